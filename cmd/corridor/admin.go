package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/landsea/corridor/exchange"
)

// withService opens the storage named by the flags and runs fn on a
// service over it (no receipt signing: these commands submit nothing).
func withService(ctx context.Context, f *storageFlags, fn func(*exchange.Service, *backends) error) error {
	b, err := f.open(ctx)
	if err != nil {
		return err
	}
	defer b.close()
	return fn(b.service(nil, nil), b)
}

func partiesCommand() *cobra.Command {
	var f storageFlags
	cmd := &cobra.Command{
		Use:   "parties",
		Short: "Add, list and revoke parties and their keys (on the storage directly)",
		Long: `Manage the corridor's parties on the storage the gateway uses (same
--data, --redis-url and --s3-* flags as serve). A key is printed once,
when it is made; only its salted hash is stored.`,
	}
	f.register(cmd.PersistentFlags())
	f.WritesNoDocuments = true
	pre := func(cmd *cobra.Command, _ []string) error { return envDefaults(cmd) }

	var name, country string
	var roles, places []string
	add := &cobra.Command{
		Use:     "add ID --name NAME --role ROLE[,ROLE] --country CC",
		Short:   "Add a party and print its first API key",
		Example: `  corridor parties add cq-mto --name "Chongqing Land-Sea Logistics" --role mto,carrier --country CN`,
		Args:    cobra.ExactArgs(1),
		PreRunE: pre,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withService(cmd.Context(), &f, func(svc *exchange.Service, _ *backends) error {
				var rs []exchange.Role
				for _, r := range roles {
					rs = append(rs, exchange.Role(strings.TrimSpace(r)))
				}
				p, err := svc.CreateParty(cmd.Context(), exchange.Party{ID: args[0], Name: name, Roles: rs, Country: country, Places: places})
				if err != nil {
					return describe(err)
				}
				key, k, err := svc.IssueKey(cmd.Context(), p.ID)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "party %s added\nkey id: %s\nkey:    %s\n(shown once: only its hash is stored)\n", p.ID, k.ID, key)
				return nil
			})
		},
	}
	add.Flags().StringVar(&name, "name", "", "the party's name")
	add.Flags().StringSliceVar(&roles, "role", nil, fmt.Sprintf("roles, of %v", exchange.Roles))
	add.Flags().StringVar(&country, "country", "", "ISO 3166-1 alpha-2 country")
	add.Flags().StringSliceVar(&places, "place", nil, "UN/LOCODEs where the party acts (a port, an agency's office), for routing rules")

	var asJSON bool
	list := &cobra.Command{
		Use: "list", Short: "List the parties", Args: cobra.NoArgs, PreRunE: pre,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withService(cmd.Context(), &f, func(svc *exchange.Service, _ *backends) error {
				ps, err := svc.Parties.ListParties(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(cmd.OutOrStdout()).Encode(ps)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tROLES\tCOUNTRY\tSTATUS")
				for _, p := range ps {
					st := "active"
					if p.Disabled {
						st = "revoked"
					}
					fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\n", p.ID, shownName(p.Name), p.Roles, p.Country, st)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	var keyID string
	revoke := &cobra.Command{
		Use:   "revoke ID | revoke --key KEYID",
		Short: "Revoke a party (all its keys) or one key",
		Long:  "Revoke a party, so none of its keys works, or with --key only one key. Gateways on the same Redis (--redis-url) stop accepting it within a second; others within their key cache time (10s).",
		Args:  cobra.MaximumNArgs(1), PreRunE: pre,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (keyID == "") == (len(args) == 0) {
				return usage(cmd, "name a party, or one key with --key")
			}
			return withService(cmd.Context(), &f, func(svc *exchange.Service, _ *backends) error {
				if keyID != "" {
					if err := svc.RevokeKey(cmd.Context(), keyID); err != nil {
						return describe(err)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "key %s revoked\n", keyID)
					return nil
				}
				if err := svc.DisableParty(cmd.Context(), args[0]); err != nil {
					return describe(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "party %s revoked\n", args[0])
				return nil
			})
		},
	}
	revoke.Flags().StringVar(&keyID, "key", "", "revoke only this key (its id: the part between the dots)")

	key := &cobra.Command{
		Use: "key ID", Short: "Make another API key for a party", Args: cobra.ExactArgs(1), PreRunE: pre,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withService(cmd.Context(), &f, func(svc *exchange.Service, _ *backends) error {
				plain, k, err := svc.IssueKey(cmd.Context(), args[0])
				if err != nil {
					return describe(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "key id: %s\nkey:    %s\n(shown once: only its hash is stored)\n", k.ID, plain)
				return nil
			})
		},
	}
	cmd.AddCommand(add, list, revoke, key)
	return cmd
}

// describe renders a domain error with its problems for a terminal.
func describe(err error) error {
	var e *exchange.Error
	if !errors.As(err, &e) || len(e.Problems) == 0 {
		return err
	}
	return errors.New(withProblems(e.Message, e.Problems))
}

func reindexCommand() *cobra.Command {
	var f storageFlags
	var requeue bool
	var since string
	cmd := &cobra.Command{
		Use:   "reindex",
		Short: "Rebuild indexes (and, with --requeue, inboxes) from the archive",
		Long: `Read every record in the archive and index it again: documents, shipments
and natural keys. With --requeue, every document is also queued again for
each of its recipients; an inbox skips a document it still knows (on
Redis: not yet acked, or acked and received within --redis-dedupe-window),
so after Redis lost its data recipients get again what they may have had
(they dedupe by document id). The archive is the ledger: nothing
acknowledged is lost.

--requeue-since queues again only the documents received since then (a
time, or a duration before now): after a failover that lost the last
seconds of a Redis that kept the rest, requeue from a little before it,
not every document older than the window again.

On Redis, --redis-dedupe-window and --redis-record-ttl left out are the
ones the gateways recorded there; if Redis lost them with its data,
reindex asks for them: give them as the gateways run (or start a gateway
first). With a record TTL only the records of documents received within
it are written to Redis; views read the others from the archive.

  corridor reindex --requeue                   # Redis lost everything
  corridor reindex --requeue-since 2026-11-27T09:00:00Z
  corridor reindex --requeue-since 30m`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return envDefaults(cmd) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withService(cmd.Context(), &f, func(svc *exchange.Service, b *backends) error {
				if b.redis != nil {
					// A timeline naming a segment the archive lost reads
					// again once its entries are filed again, below.
					n, err := b.redis.RepairSegments(cmd.Context())
					if err != nil {
						return fmt.Errorf("check the timelines' segments: %w", err)
					}
					if n > 0 {
						fmt.Fprintf(cmd.OutOrStdout(), "dropped %d segment(s) the archive does not hold; their entries are filed again\n", n)
					}
				}
				bar := newBar(cmd.ErrOrStderr(), -1, "reindexing")
				from, err := requeueSince(since, time.Now())
				if err != nil {
					return err
				}
				n, err := svc.Reindex(cmd.Context(), requeue || since != "", from, func() { _ = bar.Add(1) })
				_ = bar.Finish()
				fmt.Fprintf(cmd.OutOrStdout(), "\nreindexed %d document(s)\n", n)
				return err
			})
		},
	}
	f.register(cmd.Flags())
	f.NoDefaults = true
	cmd.Flags().BoolVar(&requeue, "requeue", false, "queue every document again for its recipients")
	cmd.Flags().StringVar(&since, "requeue-since", "", "queue again only the documents received since this time (RFC 3339) or this long ago (e.g. 30m); implies --requeue")
	return cmd
}

// requeueSince reads --requeue-since: a time, or a duration before now
// (zero when empty: every document).
func requeueSince(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--requeue-since %q: want a time (2026-11-27T09:00:00Z) or a duration (30m)", v)
}

// shownName is a name as a terminal may show it: quoted, with escapes,
// when it holds anything not printable (a name stored before names were
// checked could forge lines of a list, or hide what it says).
func shownName(name string) string {
	if !exchange.Printable(name) {
		return strconv.QuoteToGraphic(name)
	}
	return name
}
