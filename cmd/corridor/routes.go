package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/landsea/corridor/adapters/routing"
	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/schemas"
)

func routesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "Check routing rules, and explain who receives a document (offline)",
		Long: `The single window's routing rules add the authorities and operators that
must receive a document beyond the parties it names (see
deploy/routing/corridor.yaml). These commands run offline, like validate.`,
	}
	var file string
	check := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Check a routing file: exit 0 when it holds, 1 with every problem (line and pointer)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rules, err := loadRules(args...)
			var re *routing.Error
			if errors.As(err, &re) {
				fmt.Fprintln(cmd.ErrOrStderr(), re.Error())
				return exitError{1}
			} else if err != nil {
				return err
			}
			for _, r := range rules.Rules {
				var to []string
				for _, t := range r.Send {
					to = append(to, t.String())
				}
				decides := ""
				if r.Decides {
					decides = " (decides)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s -> %s%s\n", r.Name, strings.Join(to, ", "), decides)
			}
			return nil
		},
	}
	var bill, partiesFile string
	var asJSON bool
	explain := &cobra.Command{
		Use:   "explain FILE...",
		Short: "Show which rules match each document and who would receive it",
		Long: `Show, for each document, the parties it names, the routing rules that match
it and whom they add, its recipients and, for a declaration, the parties
that must each decide on it: what the gateway's receipt would say in
routedBy. It runs offline: --bill gives the one bill of the document's
shipment (for rules on the route's places, such as "every port at the port
of loading"), and --parties a parties file (as deploy/demo/parties.json)
to resolve "every agency at ..." to party ids; without them such targets
are listed as written.`,
		Example: `  corridor routes explain --bill deploy/demo/documents/01-one-bill.json --parties deploy/demo/parties.json \
      deploy/demo/documents/03-export-declaration.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rules, err := loadRules(file)
			if err != nil {
				return err
			}
			var plan *exchange.Plan
			if bill != "" {
				doc, err := readDoc(bill)
				if err != nil {
					return err
				}
				plan = exchange.PlanOf(doc.Fields)
			}
			var parties []exchange.Party
			if partiesFile != "" {
				if err := readJSON(partiesFile, &parties); err != nil {
					return err
				}
			}
			failed := false
			for _, f := range args {
				doc, err := readDoc(f)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", f, err)
					failed = true
					continue
				}
				e := exchange.Explain(rules, doc.Type, doc.Version, doc.Fields, plan, parties)
				if asJSON {
					if err := json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"file": f, "routing": e}); err != nil {
						return err
					}
					continue
				}
				printExplanation(cmd.OutOrStdout(), f, e)
			}
			if failed {
				return exitError{1}
			}
			return nil
		},
	}
	explain.Flags().StringVar(&file, "routing", "", "routing rules file (default: the embedded corridor rules)")
	explain.Flags().StringVar(&bill, "bill", "", "the one bill of the documents' shipment")
	explain.Flags().StringVar(&partiesFile, "parties", "", "parties file to resolve roles to party ids")
	explain.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(check, explain)
	return cmd
}

func loadRules(file ...string) (*exchange.Rules, error) {
	if len(file) == 0 || file[0] == "" {
		return routing.Default(), nil
	}
	return routing.Load(file[0])
}

func readDoc(file string) (*schemas.Document, error) {
	body, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	typ, err := schemas.Detect(body)
	if err != nil {
		return nil, err
	}
	return schemas.Validate(typ, 0, body)
}

func printExplanation(w io.Writer, file string, e exchange.Explanation) {
	fmt.Fprintf(w, "%s: %s v%d from %s\n", file, e.Type, e.Version, e.Sender)
	fmt.Fprintf(w, "  named:      %s\n", strings.Join(e.Named, ", "))
	if len(e.Hits) == 0 {
		fmt.Fprintln(w, "  no routing rule matches")
	}
	for _, h := range e.Hits {
		to := strings.Join(h.Parties, ", ")
		if to == "" {
			to = "nobody now"
		}
		decides := ""
		if h.Decides {
			decides = ", deciding"
		}
		fmt.Fprintf(w, "  rule %s: %s -> %s%s\n", h.Rule, strings.Join(h.Targets, ", "), to, decides)
	}
	fmt.Fprintf(w, "  routedBy:   [%s]\n", strings.Join(e.RoutedBy, " "))
	fmt.Fprintf(w, "  recipients: %s\n", strings.Join(e.Recipients, ", "))
	if len(e.Deciders) > 0 {
		fmt.Fprintf(w, "  deciders:   %s\n", strings.Join(e.Deciders, ", "))
	}
	if e.Refused != "" {
		fmt.Fprintf(w, "  REFUSED:    %s\n", e.Refused)
	}
}
