package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/schemas"
)

func validateCommand() *cobra.Command {
	var typ string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate [--type T] [--json] FILE...",
		Short: "Check documents offline, with no server and no key",
		Long: `Check documents against the corridor's schemas and domain rules, offline.

The type is read from each document's documentType field, or told from its
fields, unless --type names it. Every problem is printed as
FILE: POINTER: DETAIL, the pointer an RFC 6901 JSON pointer.

Exit status: 0 when every document is valid, 1 when any is not, 2 on a
usage error (no file, a file that cannot be read, an unknown type).`,
		Example: `  corridor validate schemas/one-bill/v1.example.json
  corridor validate --type customs-declaration --json declaration.json`,
		RunE: func(cmd *cobra.Command, files []string) error {
			if len(files) == 0 {
				return usage(cmd, "name at least one file")
			}
			return runValidate(cmd.OutOrStdout(), cmd.ErrOrStderr(), typ, asJSON, files)
		},
	}
	cmd.Flags().StringVar(&typ, "type", "", "document type (default: told from each document)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	return cmd
}

func usage(cmd *cobra.Command, msg string) error {
	fmt.Fprintf(cmd.ErrOrStderr(), "corridor %s: %s\n%s", cmd.Name(), msg, cmd.UsageString())
	return exitError{2}
}

type fileResult struct {
	File     string            `json:"file"`
	Type     string            `json:"type,omitempty"`
	Version  int               `json:"schemaVersion,omitempty"`
	Valid    bool              `json:"valid"`
	Problems []schemas.Problem `json:"problems,omitempty"`
	Error    string            `json:"error,omitempty"`
}

func runValidate(out, errw io.Writer, typ string, asJSON bool, files []string) error {
	var results []fileResult
	invalid, usageErr := false, false
	for _, f := range files {
		r := fileResult{File: f}
		body, err := os.ReadFile(f)
		t := typ
		if err == nil && t == "" {
			t, err = schemas.Detect(body)
		}
		var doc *schemas.Document
		if err == nil {
			doc, err = schemas.Validate(t, 0, body)
		}
		var inv *schemas.InvalidError
		var mal *schemas.MalformedError
		switch {
		case err == nil:
			r.Valid, r.Type, r.Version = true, doc.Type, doc.Version
		case errors.As(err, &inv):
			r.Type, r.Problems, invalid = t, inv.Problems, true
		case errors.As(err, &mal):
			r.Type, invalid = t, true
			r.Problems = []schemas.Problem{{Pointer: mal.Pointer, Detail: mal.Detail}}
		default:
			r.Error, usageErr = err.Error(), true
		}
		results = append(results, r)
	}
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		_ = enc.Encode(results)
	} else {
		for _, r := range results {
			switch {
			case r.Error != "":
				fmt.Fprintf(errw, "%s: %s\n", r.File, r.Error)
			case r.Valid:
				fmt.Fprintf(out, "%s: valid %s v%d\n", r.File, r.Type, r.Version)
			default:
				for _, p := range r.Problems {
					fmt.Fprintf(out, "%s: %s: %s\n", r.File, p.Pointer, p.Detail)
				}
			}
		}
	}
	switch {
	case usageErr:
		return exitError{2}
	case invalid:
		return exitError{1}
	}
	return nil
}

// client talks to a running gateway.
type client struct {
	server, key string
	http        *http.Client
}

func clientFlags(cmd *cobra.Command, c *client) {
	cmd.Flags().StringVar(&c.server, "server", "http://127.0.0.1:8080", "gateway URL")
	cmd.Flags().StringVar(&c.key, "key", "", "your API key (or CORRIDOR_KEY)")
	c.http = &http.Client{Timeout: 90 * time.Second}
}

func (c *client) do(ctx context.Context, method, path string, body []byte, hdr map[string]string) (int, []byte, error) {
	if c.key == "" {
		return 0, nil, errors.New("no API key: pass --key or set CORRIDOR_KEY")
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.server, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return resp.StatusCode, data, err
}

// problemText renders a problem+json answer for a terminal.
func problemText(status int, data []byte) string {
	var p struct {
		Title, Detail string
		Errors        []schemas.Problem
	}
	if json.Unmarshal(data, &p) != nil || p.Title == "" {
		return fmt.Sprintf("HTTP %d: %s", status, strings.TrimSpace(string(data)))
	}
	return withProblems(fmt.Sprintf("HTTP %d %s: %s", status, p.Title, p.Detail), p.Errors)
}

// withProblems puts each problem on a line of its own under head.
func withProblems(head string, problems []schemas.Problem) string {
	var b strings.Builder
	b.WriteString(head)
	for _, p := range problems {
		fmt.Fprintf(&b, "\n  %s: %s", p.Pointer, p.Detail)
	}
	return b.String()
}

func submitCommand() *cobra.Command {
	c := &client{}
	var typ, idem string
	var version int
	cmd := &cobra.Command{
		Use:   "submit --type T FILE...",
		Short: "Submit documents to a gateway and print their receipts",
		Long: `Submit documents to a running gateway; each receipt is printed as one JSON line.
The type is told from each document unless --type names it. A document
already submitted gets its first receipt back (HTTP 200), and nobody
receives it twice. With several files a progress bar shows on stderr.`,
		Example: `  corridor submit --key cor.demo-cq-rail.demo deploy/demo/documents/06-event-rail-departed.json`,
		RunE: func(cmd *cobra.Command, files []string) error {
			if err := envDefaults(cmd); err != nil {
				return err
			}
			if len(files) == 0 {
				return usage(cmd, "name at least one file")
			}
			if idem != "" && len(files) > 1 {
				return usage(cmd, "--idempotency-key applies to one file only")
			}
			var bar *progressbar.ProgressBar
			if len(files) > 1 {
				bar = newBar(cmd.ErrOrStderr(), int64(len(files)), "submitting")
			}
			failed := false
			for _, f := range files {
				body, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				t := typ
				if t == "" {
					if t, err = schemas.Detect(body); err != nil {
						return fmt.Errorf("%s: %w (pass --type)", f, err)
					}
				}
				path := "/v1/documents/" + url.PathEscape(t)
				if version > 0 {
					path += "?version=" + strconv.Itoa(version)
				}
				hdr := map[string]string{}
				if idem != "" {
					hdr["Idempotency-Key"] = idem
				}
				status, data, err := c.do(cmd.Context(), http.MethodPost, path, body, hdr)
				if err != nil {
					return err
				}
				if status == http.StatusCreated || status == http.StatusOK {
					fmt.Fprintln(cmd.OutOrStdout(), strings.TrimSpace(string(data)))
				} else {
					failed = true
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %s\n", f, problemText(status, data))
				}
				if bar != nil {
					_ = bar.Add(1)
				}
			}
			if failed {
				return exitError{1}
			}
			return nil
		},
	}
	clientFlags(cmd, c)
	cmd.Flags().StringVar(&typ, "type", "", "document type (default: told from each document)")
	cmd.Flags().IntVar(&version, "version", 0, "schema version (default: the newest)")
	cmd.Flags().StringVar(&idem, "idempotency-key", "", "Idempotency-Key for a single document")
	return cmd
}

func pullCommand() *cobra.Command {
	c := &client{}
	var limit int
	var wait time.Duration
	var ack bool
	var out string
	cmd := &cobra.Command{
		Use:   "pull",
		Short: "Pull your inbox; optionally save the documents and ack them",
		Long: `Pull messages from your inbox on a gateway, waiting up to --wait when it is
empty. Each message is printed as one JSON line (its document included), or,
with --out, each document is saved as DIR/<document id>.json with its exact
bytes. With --ack the messages are acked once printed or saved; a message
not acked comes back after the gateway's visibility timeout.`,
		Example: `  corridor pull --key cor.demo-cq-customs.demo --wait 10s --out inbox/ --ack`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := envDefaults(cmd); err != nil {
				return err
			}
			path := fmt.Sprintf("/v1/inbox?limit=%d&wait=%g", limit, wait.Seconds())
			status, data, err := c.do(cmd.Context(), http.MethodGet, path, nil, nil)
			if err != nil {
				return err
			}
			if status != http.StatusOK {
				return errors.New(problemText(status, data))
			}
			var inbox struct {
				Messages []json.RawMessage `json:"messages"`
			}
			if err := json.Unmarshal(data, &inbox); err != nil {
				return err
			}
			var ids []string
			for _, raw := range inbox.Messages {
				var m struct {
					ID         string `json:"id"`
					DocumentID string `json:"documentId"`
				}
				if err := json.Unmarshal(raw, &m); err != nil {
					return err
				}
				if out != "" {
					// The exact bytes, as archived, not the re-encoded copy in the message.
					st, body, err := c.do(cmd.Context(), http.MethodGet, "/v1/documents/"+m.DocumentID, nil, nil)
					if err != nil || st != http.StatusOK {
						return fmt.Errorf("fetch %s: %v %s", m.DocumentID, err, problemText(st, body))
					}
					if err := os.MkdirAll(out, 0o750); err != nil {
						return err
					}
					if err := os.WriteFile(filepath.Join(out, m.DocumentID+".json"), body, 0o640); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "saved %s\n", filepath.Join(out, m.DocumentID+".json"))
				} else {
					fmt.Fprintln(cmd.OutOrStdout(), string(raw))
				}
				ids = append(ids, m.ID)
			}
			if ack && len(ids) > 0 {
				body, _ := json.Marshal(map[string][]string{"ids": ids})
				status, data, err := c.do(cmd.Context(), http.MethodPost, "/v1/inbox/ack", body, nil)
				if err != nil {
					return err
				}
				if status != http.StatusOK {
					return errors.New(problemText(status, data))
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "acked %d message(s)\n", len(ids))
			}
			return nil
		},
	}
	clientFlags(cmd, c)
	cmd.Flags().IntVar(&limit, "limit", 10, "most messages to pull (1-100)")
	cmd.Flags().DurationVar(&wait, "wait", 0, "how long to wait when the inbox is empty (up to 30s)")
	cmd.Flags().BoolVar(&ack, "ack", false, "ack the messages pulled")
	cmd.Flags().StringVar(&out, "out", "", "save each document's exact bytes in this folder")
	return cmd
}

func trackCommand() *cobra.Command {
	c := &client{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "track REF",
		Short: "Show a shipment by bill number or container number",
		Long: `Show a shipment you take part in (or were granted, or, as an operator,
any shipment): its status and legs with planned and actual times, the
documents of its graph, customs per declaration, the holder of its one bill,
and its first --limit events in time order. REF is the one bill's number, the
number of any document of its graph, or a container number (a container that
travels in several of your shipments lists them instead).`,
		Example: `  corridor track --key cor.demo-sg-motors.demo CQNL2026000187`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := envDefaults(cmd); err != nil {
				return err
			}
			status, data, err := c.do(cmd.Context(), http.MethodGet, "/v1/shipments/"+url.PathEscape(args[0]), nil, nil)
			if err != nil {
				return err
			}
			if status != http.StatusOK && status != http.StatusMultipleChoices {
				return errors.New(problemText(status, data))
			}
			if asJSON {
				fmt.Fprintln(cmd.OutOrStdout(), string(data))
				return nil
			}
			if status == http.StatusMultipleChoices {
				var choices struct {
					Shipments []exchange.Summary `json:"shipments"`
				}
				if err := json.Unmarshal(data, &choices); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s belongs to %d shipments; track one by its one bill:\n", args[0], len(choices.Shipments))
				for _, s := range choices.Shipments {
					fmt.Fprintf(cmd.OutOrStdout(), "  %s  %s -> %s  %s\n", s.Ref, s.Route.PlaceOfReceipt, s.Route.PlaceOfDelivery, s.Status)
				}
				return nil
			}
			var sh exchange.Shipment
			if err := json.Unmarshal(data, &sh); err != nil {
				return err
			}
			printShipment(cmd.OutOrStdout(), sh)
			return nil
		},
	}
	clientFlags(cmd, c)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the shipment as JSON")
	return cmd
}

// printShipment writes a shipment for a terminal.
func printShipment(w io.Writer, sh exchange.Shipment) {
	fmt.Fprintf(w, "shipment %s  %s  %s -> %s", sh.Ref, sh.Status, sh.Route.PlaceOfReceipt, sh.Route.PlaceOfDelivery)
	if sh.Holder != "" {
		fmt.Fprintf(w, "  (one bill held by %s)", sh.Holder)
	}
	fmt.Fprintln(w, "\nlegs:")
	for _, l := range sh.Legs {
		fmt.Fprintf(w, "  %d %-5s %s -> %s  %-14s %-11s planned %s -> %s", l.Index+1, l.Mode, l.From, l.To, l.Carrier, l.Status, l.PlannedDeparture, l.PlannedArrival)
		if l.ActualDeparture != "" {
			fmt.Fprintf(w, "  actual %s -> %s", l.ActualDeparture, l.ActualArrival)
		}
		if l.DelayMinutes > 0 {
			fmt.Fprintf(w, "  (%d min late)", l.DelayMinutes)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "documents:")
	for _, d := range sh.Documents {
		fmt.Fprintf(w, "  %s  %-22s %-18s from %-14s %s\n", d.ReceivedAt.Format(time.RFC3339), d.Type, d.Number, d.Sender, d.ID)
	}
	fmt.Fprintln(w, "customs:")
	for _, c := range sh.Customs {
		fmt.Fprintf(w, "  %s %-7s %s at %s: %s\n", c.Country, c.DeclarationKind, c.DeclarationNumber, c.CustomsAuthority, c.Status)
	}
	fmt.Fprintln(w, "events:")
	for _, e := range sh.Events {
		mark := ""
		if e.Retracted {
			mark = " (retracted)"
		}
		fmt.Fprintf(w, "  %s  %s %s/%s at %s %s%s\n", e.EventDateTime, e.EventClassifierCode, e.EventType, e.EventCode, e.Location, e.ContainerNumber, mark)
	}
	if sh.Next != "" {
		fmt.Fprintln(w, "  (more events: GET /v1/shipments/"+sh.Ref+"?cursor="+sh.Next+")")
	}
}

// newBar is a progress bar on w that shows only when w is a terminal: in a
// log file or a pipe every redraw would be one more line of noise.
func newBar(w io.Writer, max int64, desc string, opts ...progressbar.Option) *progressbar.ProgressBar {
	f, ok := w.(*os.File)
	shown := ok && term.IsTerminal(int(f.Fd()))
	return progressbar.NewOptions64(max, append([]progressbar.Option{progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc), progressbar.OptionShowCount(), progressbar.OptionSetVisibility(shown)}, opts...)...)
}
