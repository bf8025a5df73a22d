package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	httpapi "github.com/landsea/corridor/adapters/http"
	"github.com/landsea/corridor/adapters/routing"
	"github.com/landsea/corridor/adapters/webhook"
	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/storage/redis"
)

// Gateway is a running corridor serve: backends, service and HTTP server.
type Gateway struct {
	Storage    storageFlags
	Listen     string
	ReceiptKey string // file of the Ed25519 seed; created when missing
	AdminKey   string
	Demo       bool
	DemoDir    string
	BodyLimit  int
	RateLimit  int
	// VolumeLimit is in MiB per minute.
	VolumeLimit int
	MaxWait     time.Duration
	// TrustedProxies (CIDR prefixes or addresses) may name the client in
	// X-Forwarded-For; from any other peer the header is ignored.
	TrustedProxies []string
	// Routing is the routing rules file; "" uses the embedded corridor
	// rules. SIGHUP reads it again.
	Routing  string
	Webhooks webhook.Config
	// PprofListen, when set, serves net/http/pprof there (keep it on
	// loopback: profiles show what the gateway is doing).
	PprofListen string
	// OutboxInterval is how often deliveries left pending (a gateway died
	// after an archive write) are completed; they are also at start.
	OutboxInterval time.Duration
	// Failpoint, for tests, names a point of a submission ("after-archive")
	// where the process kills itself (SIGKILL) once it is serving; it is
	// read from CORRIDOR_FAILPOINT.
	Failpoint string
	LogFormat string
	Out       io.Writer // where the start-up banner goes (nil: nowhere)
	LogTo     io.Writer // where logs go (nil: stderr)

	log         *slog.Logger
	backends    *backends
	pusher      *webhook.Pusher
	compactions compactionMetrics
	svc         *exchange.Service
	server      *httpapi.Server
	ln          net.Listener
}

// authFailures is how many failed authentications a key id may have from
// one address per minute.
const authFailures = 30

func serveCommand() *cobra.Command {
	g := &Gateway{Out: os.Stdout}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Long: `Run the gateway: the HTTP API (described by GET /openapi.json) on --listen.

With no Redis and no --s3-endpoint everything is kept under --data (the
embedded backend): nothing to install. With --redis-url (one server),
--redis-sentinels and --redis-master (Sentinel), or --redis-cluster,
inboxes and indexes live in Redis; with --s3-endpoint, documents, records and parties
live in S3 or MinIO. The admin API (/v1/admin) takes the key in
CORRIDOR_ADMIN_KEY. SIGINT or SIGTERM drains requests in flight, then exits.

--demo loads the demo corridor (deploy/demo): its parties with public demo
keys, and its scenario, a Chongqing -> Qinzhou -> Singapore shipment.`,
		Example: `  corridor serve --demo
  CORRIDOR_ADMIN_KEY=... corridor serve --listen :8080 --redis-url redis://127.0.0.1:6379/0 \
      --s3-endpoint 127.0.0.1:9000 --s3-access-key corridor --s3-secret-key ...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := envDefaults(cmd); err != nil {
				return err
			}
			g.AdminKey = os.Getenv("CORRIDOR_ADMIN_KEY")
			g.Failpoint = os.Getenv("CORRIDOR_FAILPOINT")
			if err := g.Open(cmd.Context()); err != nil {
				return err
			}
			defer g.Close()
			return g.Run(cmd.Context())
		},
	}
	fs := cmd.Flags()
	g.Storage.register(fs)
	fs.StringVar(&g.Listen, "listen", "127.0.0.1:8080", "address to serve HTTP on")
	fs.StringVar(&g.ReceiptKey, "receipt-key", "", "file holding the receipt signing key (default <data>/receipt.key, created when missing)")
	fs.BoolVar(&g.Demo, "demo", false, "load the demo corridor: parties with public demo keys and the demo shipment")
	fs.StringVar(&g.DemoDir, "demo-dir", "deploy/demo", "folder of the demo corridor")
	fs.IntVar(&g.BodyLimit, "body-limit", 4<<20, "largest document accepted, in bytes")
	fs.IntVar(&g.RateLimit, "rate-limit", 1200, "requests per minute per party")
	fs.IntVar(&g.VolumeLimit, "volume-limit", httpapi.DefaultVolumeLimit>>10, "MiB of documents (submitted or validated) per minute per party; at least --body-limit")
	fs.DurationVar(&g.MaxWait, "max-wait", 30*time.Second, "longest inbox long poll")
	fs.StringSliceVar(&g.TrustedProxies, "trusted-proxies", nil,
		"load balancers or proxies (CIDR prefixes or addresses, comma-separated) whose X-Forwarded-For names the client")
	fs.StringVar(&g.Routing, "routing", "", "routing rules file of the single window (default: the corridor's rules, embedded; see deploy/routing/corridor.yaml); SIGHUP reads it again")
	fs.BoolVar(&g.Webhooks.AllowHTTP, "webhook-allow-http", false, "let subscriptions use http:// URLs (tests and the demo; production pushes over https)")
	fs.BoolVar(&g.Webhooks.AllowPrivate, "webhook-allow-private", false, "let subscriptions reach loopback, private and link-local addresses (tests and the demo)")
	fs.DurationVar(&g.Webhooks.MaxAge, "webhook-max-age", 72*time.Hour, "how long a message is retried before push gives up (it stays in the inbox for pull)")
	fs.IntVar(&g.Webhooks.InFlight, "webhook-in-flight", 4, "requests in flight per subscription")
	fs.DurationVar(&g.Webhooks.FirstRetry, "webhook-first-retry", 5*time.Second, "the first retry of a failed push comes within this; later ones back off exponentially")
	fs.DurationVar(&g.OutboxInterval, "outbox-interval", 30*time.Second,
		"how often to complete deliveries a gateway left pending when it died after archiving (also done at start; 0: only at start)")
	fs.StringVar(&g.PprofListen, "pprof-listen", "", "serve Go's profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060 (empty: off)")
	fs.StringVar(&g.LogFormat, "log-format", "json", "log format: json or text")
	return cmd
}

// Open opens the backends, loads the demo if asked, and listens.
func (g *Gateway) Open(ctx context.Context) error {
	logTo := g.LogTo
	if logTo == nil {
		logTo = os.Stderr
	}
	var h slog.Handler = slog.NewJSONHandler(logTo, nil)
	if g.LogFormat == "text" {
		h = slog.NewTextHandler(logTo, nil)
	}
	g.log = slog.New(h)
	if g.AdminKey != "" && len(g.AdminKey) < 16 {
		return errors.New("CORRIDOR_ADMIN_KEY must be at least 16 characters (e.g. openssl rand -hex 32)")
	}
	proxies, err := httpapi.ParseTrustedProxies(g.TrustedProxies)
	if err != nil {
		return err
	}
	rules := routing.Default()
	if g.Routing != "" {
		if rules, err = routing.Load(g.Routing); err != nil {
			return err
		}
	}
	b, err := g.Storage.open(ctx)
	if err != nil {
		return err
	}
	g.backends = b
	keyFile := g.ReceiptKey
	if keyFile == "" {
		keyFile = filepath.Join(g.Storage.Data, "receipt.key")
	}
	signer, err := loadSigner(keyFile)
	if err != nil {
		return err
	}
	if b.redis != nil {
		if err := b.redis.AgreeReceiptKey(ctx, signer.PublicKey()); err != nil {
			return err
		}
	}
	g.svc = b.service(signer, g.log)
	g.svc.SetRules(rules)
	// Deliveries a gateway left half done when it died are completed
	// before this one serves.
	if n, err := g.svc.SweepOutbox(ctx, 0); err != nil {
		g.log.Warn("outbox sweep at start (tried again every --outbox-interval)", "delivered", n, "err", err)
	} else if n > 0 {
		g.log.Info("outbox sweep at start", "delivered", n)
	}
	if g.Demo {
		if err := loadDemo(ctx, g.svc, g.DemoDir); err != nil {
			return fmt.Errorf("load demo: %w", err)
		}
	}
	volume := httpapi.VolumeKiB(g.VolumeLimit<<10, g.BodyLimit)
	cfg := httpapi.Config{AdminKey: g.AdminKey, BodyLimit: g.BodyLimit, RateLimit: g.RateLimit, RateWindow: time.Minute, VolumeLimit: volume,
		AuthFailures: authFailures, MaxWait: g.MaxWait, TrustedProxies: proxies, Version: buildVersion(), Logger: g.log}
	if b.redis != nil {
		// Kept in Redis, the limits hold across every gateway on it.
		cfg.RateLimiter = b.redis.Limiter("party", g.RateLimit, time.Minute)
		cfg.VolumeLimiter = b.redis.Limiter("volume", volume, time.Minute)
		cfg.AuthLimiter = b.redis.Limiter("auth", authFailures, time.Minute)
	}
	wcfg := g.Webhooks
	wcfg.Logger = g.log
	if g.pusher, err = webhook.New(g.svc, wcfg); err == nil {
		g.svc.URLCheck = g.pusher.CheckURL
		cfg.Pusher = g.pusher
	} else {
		g.log.Warn("webhooks off", "err", err)
	}
	g.server = httpapi.New(g.svc, cfg)
	if g.compactions, err = newCompactionMetrics(g.server.Registry()); err != nil {
		return err
	}
	if g.pusher != nil {
		if err := g.pusher.Register(g.server.Registry()); err != nil {
			return err
		}
	}
	g.ln, err = net.Listen("tcp", g.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	g.armFailpoint()
	return nil
}

var (
	_ httpapi.RateLimiter = (*redis.Limiter)(nil)
	_ httpapi.AuthLimiter = (*redis.Limiter)(nil)
)

// armFailpoint makes the process kill itself at g.Failpoint, from now on
// (the demo loaded at start is not cut short).
func (g *Gateway) armFailpoint() {
	if g.Failpoint == "" {
		return
	}
	point := g.Failpoint
	g.log.Warn("failpoint armed: the process kills itself there", "point", point)
	g.svc.Failpoint = func(at string) {
		if at != point {
			return
		}
		g.log.Error("failpoint reached: SIGKILL", "point", at)
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

// OpenConnections counts the HTTP connections open now.
func (g *Gateway) OpenConnections() int32 { return g.server.App().Server().GetOpenConnectionsCount() }

// Addr is where the gateway listens.
func (g *Gateway) Addr() string { return g.ln.Addr().String() }

// Run serves until ctx ends, then drains requests in flight.
func (g *Gateway) Run(ctx context.Context) error {
	g.log.Info("corridor serving", "addr", g.Addr(), "backends", g.backends.desc, "version", buildVersion(),
		"admin", g.AdminKey != "", "demo", g.Demo)
	if g.Out != nil {
		g.banner()
	}
	errc := make(chan error, 1)
	go func() { errc <- g.server.Serve(g.ln) }()
	// Revocations from other gateways and the outbox's sweeps run until
	// the server has drained; Close waits for them before closing storage.
	bg, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { _ = g.svc.WatchRevocations(bg) })
	wg.Go(func() { g.svc.RunOutbox(bg, g.OutboxInterval) })
	if g.pusher != nil {
		wg.Go(func() { g.pusher.Run(bg) })
	}
	if r := g.backends.redis; r != nil {
		// On ctx: it stops when draining starts ("stop every gateway, then
		// DEL" must not see the old value recorded again).
		wg.Go(func() { keepSettings(ctx, r, g.log) })
		if r.CompactAfter > 0 {
			wg.Go(func() { r.RunCompaction(bg, compactEvery(r.CompactAfter), g.compacted) })
		}
	}
	defer wg.Wait()
	defer stopBg()
	if g.PprofListen != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		ps := &http.Server{Addr: g.PprofListen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = ps.ListenAndServe() }()
		defer ps.Close()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for done := false; !done; {
		select {
		case err := <-errc:
			return err
		case <-hup:
			g.Reload()
		case <-ctx.Done():
			done = true
		}
	}
	g.log.Info("shutting down: draining requests in flight")
	sctx, cancel := context.WithTimeout(context.Background(), g.MaxWait+10*time.Second)
	defer cancel()
	if err := g.server.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	// A Shutdown before Serve took the listener (a stop right after the
	// start) leaves it open, and Serve would wait on it for ever.
	_ = g.ln.Close()
	if err := <-errc; err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// Reload reads the routing file again. A file with problems changes
// nothing: the rules in force stay, and the problems are logged. Requests
// routing meanwhile finish with the rules they started with.
func (g *Gateway) Reload() {
	if g.Routing == "" {
		g.log.Info("SIGHUP: no --routing file; the embedded rules stay")
		return
	}
	rules, err := routing.Load(g.Routing)
	if err != nil {
		g.log.Error("routing rules not reloaded; the rules in force stay", "file", g.Routing, "err", err)
		return
	}
	g.svc.SetRules(rules)
	g.log.Info("routing rules reloaded", "file", g.Routing, "rules", len(rules.Rules))
}

// Close closes the backends (queues and indexes, then the archive).
func (g *Gateway) Close() error {
	if g.backends == nil {
		return nil
	}
	return g.backends.close()
}

func (g *Gateway) banner() {
	base := "http://" + g.Addr()
	fmt.Fprintf(g.Out, "corridor %s listening on %s\n  backends: %s\n  API:      %s/openapi.json\n  metrics:  %s/metrics\n",
		buildVersion(), base, g.backends.desc, base, base)
	if g.Demo {
		fmt.Fprintf(g.Out, "  demo corridor loaded; every demo party's key is cor.demo-<party id>.demo, e.g.\n")
		fmt.Fprintf(g.Out, "    curl -H 'Authorization: Bearer cor.demo-sg-motors.demo' %s/v1/shipments/CQNL2026000187\n", base)
		fmt.Fprintf(g.Out, "    curl -H 'Authorization: Bearer cor.demo-cq-customs.demo' '%s/v1/inbox?limit=5'\n", base)
	}
}

// keepSettings records the settings the gateways share on Redis again
// every few seconds until ctx ends (redis.Store.KeepSettings).
func keepSettings(ctx context.Context, r *redis.Store, log *slog.Logger) {
	t := time.NewTicker(settingsEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := r.KeepSettings(ctx); err != nil && ctx.Err() == nil {
				log.Error("the settings the gateways share on Redis", "err", err)
			}
		}
	}
}

// compactEvery is how often a gateway looks for timelines to compact: a
// tenth of the delay, between 10 s and 10 min.
func compactEvery(after time.Duration) time.Duration {
	return min(max(after/10, 10*time.Second), 10*time.Minute)
}

// compacted logs and counts a compaction run.
func (g *Gateway) compacted(c redis.Compaction, err error) {
	g.compactions.moved.Add(float64(c.Moved))
	g.compactions.segments.Add(float64(c.Segments))
	if err != nil {
		g.compactions.failed.Inc()
		g.log.Error("compacting timelines", "err", err, "lists", c.Lists, "moved", c.Moved, "failed", c.Failed)
		return
	}
	g.log.Info("timelines compacted", "lists", c.Lists, "moved", c.Moved, "segments", c.Segments, "deleted", c.Deleted)
}

// compactionMetrics count what RunCompaction did.
type compactionMetrics struct {
	moved, segments, failed prometheus.Counter
}

func newCompactionMetrics(reg prometheus.Registerer) (compactionMetrics, error) {
	m := compactionMetrics{
		moved: prometheus.NewCounter(prometheus.CounterOpts{Name: "corridor_timeline_entries_compacted_total",
			Help: "Entries of shipments' timelines moved out of Redis into segments beside the archive."}),
		segments: prometheus.NewCounter(prometheus.CounterOpts{Name: "corridor_timeline_segments_written_total",
			Help: "Segments of timelines written beside the archive."}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{Name: "corridor_timeline_compactions_failed_total",
			Help: "Compaction runs that met an error (a backend unavailable ends the run; a list that failed waits a delay, the others go on)."}),
	}
	for _, c := range []prometheus.Collector{m.moved, m.segments, m.failed} {
		if err := reg.Register(c); err != nil {
			return m, err
		}
	}
	return m, nil
}

// settingsEvery is how often a gateway records its shared settings again.
const settingsEvery = 10 * time.Second

// loadSigner reads the receipt key's seed (hex) from file, creating it
// with a new random seed when the file does not exist.
func loadSigner(file string) (*exchange.Signer, error) {
	raw, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		seed := make([]byte, 32)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create receipt key: %w", err)
		}
		if _, err := f.WriteString(hex.EncodeToString(seed) + "\n"); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		return exchange.NewSigner(seed)
	}
	if err != nil {
		return nil, fmt.Errorf("read receipt key: %w", err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, fmt.Errorf("receipt key %s: not hex: %w", file, err)
	}
	return exchange.NewSigner(seed)
}

// Demo corridor files (docs/contract.md, "The demo corridor"). A step is
// a document (type and file) or a grant of access to a shipment.
type demoStep struct {
	Sender string `json:"sender"`
	Type   string `json:"type"`
	File   string `json:"file"`
	Grant  *struct {
		Shipment string `json:"shipment"`
		Party    string `json:"party"`
		Publish  bool   `json:"publish"`
	} `json:"grant"`
	// Title is an action on a one bill's title (TRANSFER, PLEDGE, ...), or
	// ACCEPT or REJECT of the pending one.
	Title *struct {
		Ref    string `json:"ref"`
		Action string `json:"action"`
		To     string `json:"to"`
	} `json:"title"`
	// Amend submits File as the next revision of the sender's document Of.
	Amend *struct {
		Type string `json:"type"`
		File string `json:"file"`
		Of   string `json:"of"`
	} `json:"amend"`
}

// loadDemo creates the demo parties with their public demo keys and
// replays the scenario; run again, it changes nothing (a revoked demo key
// stays revoked).
func loadDemo(ctx context.Context, svc *exchange.Service, dir string) error {
	var parties []exchange.Party
	if err := readJSON(filepath.Join(dir, "parties.json"), &parties); err != nil {
		return err
	}
	for _, p := range parties {
		if _, err := svc.CreateParty(ctx, p); err != nil && exchange.ErrorCode(err) != exchange.CodeConflict {
			return fmt.Errorf("party %s: %w", p.ID, err)
		}
		_, k, err := exchange.DemoKey(p.ID, time.Now())
		if err != nil {
			return err
		}
		// A demo key that exists stays as it is: writing it again would
		// bring back a key revoked through the admin API or the CLI.
		if _, err := svc.Parties.Key(ctx, k.ID); err == nil {
			continue
		} else if !errors.Is(err, exchange.ErrNotFound) {
			return fmt.Errorf("demo key of %s: %w", p.ID, err)
		}
		if err := svc.Parties.PutKey(ctx, k); err != nil {
			return err
		}
	}
	var steps []demoStep
	if err := readJSON(filepath.Join(dir, "scenario.json"), &steps); err != nil {
		return err
	}
	titleSteps := 0
	for i, st := range steps {
		sender, err := svc.Parties.Party(ctx, st.Sender)
		if err != nil {
			return fmt.Errorf("step %d: sender %s: %w", i+1, st.Sender, err)
		}
		if ts := st.Title; ts != nil {
			titleSteps++
			if t, err := svc.Title(ctx, sender, ts.Ref); err == nil && len(t.Chain) > titleSteps {
				continue // taken by an earlier start: the chain is past it
			}
			switch ts.Action {
			case exchange.ActionAccept, exchange.ActionReject:
				_, err = svc.AnswerTitle(ctx, sender, ts.Ref, ts.Action == exchange.ActionAccept, "")
			default:
				_, err = svc.RequestTitle(ctx, sender, ts.Ref, exchange.TitleRequest{Action: ts.Action, To: ts.To})
			}
			if err != nil {
				return fmt.Errorf("step %d (title %s by %s): %w", i+1, ts.Action, st.Sender, err)
			}
			continue
		}
		if a := st.Amend; a != nil {
			of, err := os.ReadFile(filepath.Join(dir, a.Of))
			if err != nil {
				return err
			}
			body, err := os.ReadFile(filepath.Join(dir, a.File))
			if err != nil {
				return err
			}
			sum := sha256.Sum256(of)
			sub := exchange.Submission{Type: a.Type, Body: body, Amends: exchange.DocumentID(st.Sender, "", sum[:])}
			if _, _, err := svc.Submit(ctx, sender, sub); err != nil {
				return fmt.Errorf("step %d (amend %s): %w", i+1, a.Of, err)
			}
			continue
		}
		if g := st.Grant; g != nil {
			if cur, err := svc.GrantOf(ctx, sender, g.Shipment, g.Party); err == nil && cur.Active {
				continue // granted by an earlier start
			}
			if _, err := svc.GrantAccess(ctx, sender, g.Shipment, exchange.GrantRequest{Party: g.Party, Publish: g.Publish}); err != nil {
				return fmt.Errorf("step %d (grant to %s): %w", i+1, g.Party, err)
			}
			continue
		}
		body, err := os.ReadFile(filepath.Join(dir, st.File))
		if err != nil {
			return err
		}
		if _, _, err := svc.Submit(ctx, sender, exchange.Submission{Type: st.Type, Body: body}); err != nil {
			return fmt.Errorf("step %d (%s): %w", i+1, st.File, err)
		}
	}
	return nil
}

func readJSON(file string, v any) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}
