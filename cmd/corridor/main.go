// Command corridor is the Corridor gateway and its command-line client:
// serve runs the gateway; validate checks documents offline; submit, pull
// and track talk to a running gateway; parties and reindex operate on the
// storage directly.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set with -ldflags "-X main.version=..."; the build info is the fallback.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
		return bi.Main.Version
	}
	return "dev"
}

// exitError carries a process exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := rootCommand()
	err := root.ExecuteContext(ctx)
	var ee exitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "corridor:", err)
		os.Exit(2)
	}
}

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "corridor",
		Short: "Document exchange and single window for the land-sea trade corridor",
		Long: `Corridor carries the land-sea corridor's documents - one bills, rail and sea
bills, manifests, customs declarations and responses, tracking events - from
the party that issues them to every party that must receive them, checked
against versioned schemas, archived byte for byte, and signed for.

Every flag can also be set by the environment variable CORRIDOR_<FLAG>
(upper case, dashes as underscores), e.g. --redis-url as CORRIDOR_REDIS_URL.`,
		Version:       buildVersion(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCommand(), validateCommand(), submitCommand(), pullCommand(), trackCommand(),
		partiesCommand(), reindexCommand(), verifyCommand(), routesCommand(), subscriptionsCommand(), listenCommand(), benchCommand())
	return root
}
