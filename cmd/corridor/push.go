package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/landsea/corridor/adapters/webhook"
	"github.com/landsea/corridor/exchange"
)

func subscriptionsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subscriptions",
		Short: "Have your inbox pushed to a URL (webhooks): add, list, rm, deliveries",
		Long: `Manage your party's webhook subscriptions on a gateway. Each message of your
inbox is POSTed to the URL, signed (Standard Webhooks: webhook-id,
webhook-timestamp, webhook-signature), and acked when the receiver answers
2xx; what is never taken stays in the inbox for pull. 'corridor listen'
receives and checks them locally.`,
	}
	c := &client{}
	var types, refs []string
	var desc string
	add := &cobra.Command{
		Use: "add URL", Short: "Subscribe a URL; prints the subscription and its secret (shown once)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, _ := json.Marshal(map[string]any{"url": args[0], "types": types, "refs": refs, "description": desc})
			return c.print(cmd, http.MethodPost, "/v1/subscriptions", body, http.StatusCreated)
		},
	}
	add.Flags().StringSliceVar(&types, "type", nil, "only these message types")
	add.Flags().StringSliceVar(&refs, "ref", nil, "only messages of these shipments (one bill numbers)")
	add.Flags().StringVar(&desc, "description", "", "what the subscription is for")
	list := &cobra.Command{Use: "list", Short: "List your subscriptions", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.print(cmd, http.MethodGet, "/v1/subscriptions", nil, http.StatusOK)
		}}
	rm := &cobra.Command{Use: "rm ID", Short: "Unsubscribe", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.print(cmd, http.MethodDelete, "/v1/subscriptions/"+args[0], nil, http.StatusNoContent)
		}}
	deliveries := &cobra.Command{Use: "deliveries ID", Short: "Show the newest delivery attempts", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.print(cmd, http.MethodGet, "/v1/subscriptions/"+args[0]+"/deliveries", nil, http.StatusOK)
		}}
	for _, sc := range []*cobra.Command{add, list, rm, deliveries} {
		clientFlags(sc, c)
		cmd.AddCommand(sc)
	}
	return cmd
}

// print makes a call and prints its JSON answer.
func (c *client) print(cmd *cobra.Command, method, path string, body []byte, want int) error {
	if err := envDefaults(cmd); err != nil {
		return err
	}
	status, data, err := c.do(cmd.Context(), method, path, body, nil)
	if err != nil {
		return err
	}
	if status != want {
		return errors.New(problemText(status, data))
	}
	if len(data) > 0 {
		fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(string(data)))
	}
	return nil
}

func listenCommand() *cobra.Command {
	c := &client{}
	var addr, secret, publicKey string
	cmd := &cobra.Command{
		Use:   "listen",
		Short: "Receive your webhooks locally, check each signature, print the messages",
		Long: `Run a small webhook receiver (for developers of receiving systems, and for
the README's demo): each delivery's timestamp is checked, its v1 signature
against --secret (the subscription's whsec_ secret) and its v1a signature
against the gateway's public key (--public-key, or fetched from --server
with --key); a delivery that verifies is printed and answered 204, any
other 400, so the gateway retries it.`,
		Example: `  corridor listen --listen 127.0.0.1:9001 --secret whsec_... --server http://127.0.0.1:8080 --key cor.demo-sg-motors.demo`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := envDefaults(cmd); err != nil {
				return err
			}
			var pub ed25519.PublicKey
			if publicKey == "" && c.key != "" {
				k, err := c.receiptKey(cmd.Context())
				if err != nil {
					return err
				}
				publicKey = k
			}
			if publicKey != "" {
				raw, err := base64.StdEncoding.DecodeString(publicKey)
				if err != nil || len(raw) != ed25519.PublicKeySize {
					return errors.New("the public key is not a base64 Ed25519 key of 32 bytes")
				}
				pub = raw
			}
			if secret == "" && pub == nil {
				return errors.New("give --secret, or a public key (--public-key, or --server with --key), to check deliveries with")
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "listening on http://%s\n", ln.Addr())
			srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, Handler: listener(cmd.OutOrStdout(), secret, pub)}
			go func() { <-cmd.Context().Done(); _ = srv.Shutdown(context.Background()) }()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	clientFlags(cmd, c)
	cmd.Flags().StringVar(&addr, "listen", "127.0.0.1:9001", "address to receive webhooks on")
	cmd.Flags().StringVar(&secret, "secret", "", "the subscription's secret (whsec_...)")
	cmd.Flags().StringVar(&publicKey, "public-key", "", "the gateway's Ed25519 public key, base64 (default: fetched with --key)")
	return cmd
}

// listener checks and prints deliveries.
func listener(out io.Writer, secret string, pub ed25519.PublicKey) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err == nil {
			err = webhook.Verify(secret, pub, r.Header, body, time.Now())
		}
		if err != nil {
			fmt.Fprintf(out, "refused %s: %v\n", printable(r.Header.Get("webhook-id")), err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var m exchange.InboxMessage
		_ = json.Unmarshal(body, &m)
		// Only what verified is printed, and as plain text: a terminal is
		// not handed escape sequences from the wire.
		fmt.Fprintf(out, "%s  %-20s from %-14s %s  verified\n", m.ReceivedAt.Format(time.RFC3339), printable(m.Type), printable(m.Sender), printable(m.ID))
		w.WriteHeader(http.StatusNoContent)
	})
}

// receiptKey fetches the gateway's public key.
func (c *client) receiptKey(ctx context.Context) (string, error) {
	status, data, err := c.do(ctx, http.MethodGet, "/v1/receipt-key", nil, nil)
	if err != nil {
		return "", fmt.Errorf("fetch the public key: %w", err)
	}
	if status != http.StatusOK {
		return "", errors.New(problemText(status, data))
	}
	var k struct {
		PublicKey string `json:"publicKey"`
	}
	return k.PublicKey, json.Unmarshal(data, &k)
}

// printable keeps letters, digits and a little punctuation, at most 80.
func printable(s string) string {
	out := []rune{}
	for _, r := range s {
		if len(out) == 80 {
			break
		}
		if r > 0x20 && r < 0x7f {
			out = append(out, r)
		} else {
			out = append(out, '?')
		}
	}
	return string(out)
}
