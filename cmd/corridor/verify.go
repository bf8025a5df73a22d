package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/landsea/corridor/exchange"
)

func verifyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check what the gateway signed, offline",
	}
	cmd.AddCommand(verifyTitleCommand())
	return cmd
}

func verifyTitleCommand() *cobra.Command {
	c := &client{}
	var publicKey string
	cmd := &cobra.Command{
		Use:   "title FILE",
		Short: "Check a saved title chain against the gateway's public key",
		Long: `Check a one bill's title as saved from GET /v1/bills/{ref}/title: every
entry's hash and Ed25519 signature, the link of each entry to the one
before, their order, that each step was allowed when it was taken, and that
status, holder and pending are what the chain leads to.

The public key is --public-key (base64, as GET /v1/receipt-key publishes
it); without it, it is fetched from the gateway at --server with --key.
Exit 0: the chain holds. Exit 1: it does not, and the entry and the reason
are printed. Exit 2: the file or the key could not be read.`,
		Example: `  curl -s -H "Authorization: Bearer $KEY" $GW/v1/bills/CQNL2026000187/title > title.json
  corridor verify title title.json --public-key "$(curl -s -H "Authorization: Bearer $KEY" $GW/v1/receipt-key | jq -r .publicKey)"
  corridor verify title title.json --server $GW --key $KEY`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := envDefaults(cmd); err != nil {
				return err
			}
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var t exchange.Title
			if err := json.Unmarshal(raw, &t); err != nil {
				return fmt.Errorf("%s: not a title: %w", args[0], err)
			}
			if publicKey == "" {
				if publicKey, err = c.receiptKey(cmd.Context()); err != nil {
					return err
				}
			}
			pub, err := base64.StdEncoding.DecodeString(strings.TrimSpace(publicKey))
			if err != nil || len(pub) != ed25519.PublicKeySize {
				return errors.New("the public key is not a base64 Ed25519 key of 32 bytes")
			}
			if err := exchange.VerifyTitle(pub, t); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", args[0], err)
				return exitError{1}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: the title of %s holds: %d entries, %s, held by %s, as of %s\n", args[0], t.Ref, len(t.Chain), t.Status, t.Holder, t.Head.Time)
			return nil
		},
	}
	clientFlags(cmd, c)
	cmd.Flags().StringVar(&publicKey, "public-key", "", "the gateway's Ed25519 public key, base64 (default: fetched from --server)")
	return cmd
}
