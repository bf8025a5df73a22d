// Package http is Corridor's HTTP adapter: the Fiber app with every route
// of the contract, API-key authentication, body and rate limits,
// problem+json errors, Prometheus metrics and the OpenAPI document.
// Handlers decode, call exchange.Service, encode; no business rule lives here.
package http

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/landsea/corridor/exchange"
)

// Config tunes the server; zero values take the defaults of New.
type Config struct {
	// BodyLimit is the largest document accepted, in bytes on the wire.
	BodyLimit int
	// AdminKey guards /v1/admin; empty turns the admin API off.
	AdminKey string
	// MaxWait caps an inbox long poll.
	MaxWait time.Duration
	// RequestTimeout bounds the work of one request (a long poll adds MaxWait).
	RequestTimeout time.Duration
	// ReadTimeout, WriteTimeout and IdleTimeout bound slow clients.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// RateLimit is the requests a party may make per RateWindow.
	RateLimit  int
	RateWindow time.Duration
	// AuthFailures is how many failed authentications one key id may have
	// from one address (or a key with no id from one address) per minute
	// before that pair gets 429.
	AuthFailures int
	// AuthLimiter counts the failures; nil: in this process only. One
	// that fails is stood in for by an in-process one until it answers.
	AuthLimiter AuthLimiter
	// RateLimiter counts the requests of each party (RateLimit per
	// RateWindow); nil: in this process only. One that fails is stood in
	// for as AuthLimiter is.
	RateLimiter RateLimiter
	// VolumeLimit is the KiB of documents (submitted or validated) a party
	// may send per RateWindow, so that its requests' cost is bounded in
	// CPU as well as in number: checking a document costs up to about
	// 50 ms per MiB (BenchmarkHostile). It is raised to BodyLimit when
	// below it. VolumeLimiter counts it as RateLimiter counts requests.
	VolumeLimit   int
	VolumeLimiter RateLimiter
	// TrustedProxies are the peers whose X-Forwarded-For names the client.
	TrustedProxies []netip.Prefix
	// Pusher is the webhook pusher, when this gateway pushes.
	Pusher Pusher
	// Version is reported by /healthz.
	Version string
	Logger  *slog.Logger
}

// Server is the HTTP face of a Service.
type Server struct {
	svc      *exchange.Service
	cfg      Config
	app      *fiber.App
	log      *slog.Logger
	adminSum [32]byte
	metrics  *metrics
	failures AuthLimiter
	requests RateLimiter
	volume   RateLimiter
}

const partyKey = "corridor.party"

// New builds the app over svc.
func New(svc *exchange.Service, cfg Config) *Server {
	if cfg.BodyLimit == 0 {
		cfg.BodyLimit = 4 << 20
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 30 * time.Second
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 15 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = cfg.MaxWait + cfg.RequestTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = 1200
	}
	if cfg.RateWindow == 0 {
		cfg.RateWindow = time.Minute
	}
	if cfg.VolumeLimit == 0 {
		cfg.VolumeLimit = DefaultVolumeLimit
	}
	cfg.VolumeLimit = VolumeKiB(cfg.VolumeLimit, cfg.BodyLimit)
	if cfg.AuthFailures == 0 {
		cfg.AuthFailures = 30
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{svc: svc, cfg: cfg, log: cfg.Logger, adminSum: sha256.Sum256([]byte(cfg.AdminKey)),
		failures: NewMemoryAuthLimiter(cfg.AuthFailures), requests: NewMemoryLimiter(cfg.RateLimit, cfg.RateWindow),
		volume: NewMemoryLimiter(cfg.VolumeLimit, cfg.RateWindow)}
	if cfg.AuthLimiter != nil {
		s.failures = &authFallback{shared: cfg.AuthLimiter, local: NewMemoryLimiter(cfg.AuthFailures, time.Minute),
			degraded: degraded{log: cfg.Logger, name: "failed authentications"}}
	}
	if cfg.RateLimiter != nil {
		s.requests = &rateFallback{shared: cfg.RateLimiter, local: NewMemoryLimiter(cfg.RateLimit, cfg.RateWindow),
			degraded: degraded{log: cfg.Logger, name: "requests per party"}}
	}
	if cfg.VolumeLimiter != nil {
		s.volume = &rateFallback{shared: cfg.VolumeLimiter, local: NewMemoryLimiter(cfg.VolumeLimit, cfg.RateWindow),
			degraded: degraded{log: cfg.Logger, name: "document volume per party"}}
	}
	s.metrics = newMetrics()
	s.app = fiber.New(fiber.Config{
		AppName:               "corridor",
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		DisableStartupMessage: true,
		CaseSensitive:         true, // /V1/ADMIN is not /v1/admin
		StrictRouting:         true,
		ErrorHandler:          s.errorHandler,
		// Prefork stays off: children would re-run main with state of their own.
	})
	// fasthttp's parse errors carry the raw request (Authorization and
	// cookies included) in their text: keep it out of the error, and answer
	// every such error with a fixed body of our own (parseError).
	srv := s.app.Server()
	srv.SecureErrorLogMessage = true
	srv.ErrorHandler = s.parseError
	s.routes()
	return s
}

// Registry is the registry /metrics serves: other parts of the gateway
// (the webhook pusher) register their collectors there.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

// App returns the Fiber app, for in-process tests.
func (s *Server) App() *fiber.App { return s.app }

// Serve serves on ln until Shutdown. Every connection is read through a
// guard that refuses ambiguous request heads before fasthttp parses them
// (see guard.go).
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(headGuard{ln}) }

// Shutdown stops accepting and waits for requests in flight, up to ctx.
func (s *Server) Shutdown(ctx context.Context) error { return s.app.ShutdownWithContext(ctx) }

func (s *Server) routes() {
	app := s.app
	app.Use(s.recover, requestid.New(), s.observe)
	app.Get("/", s.index)
	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", adaptor.HTTPHandler(promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})))
	app.Get("/openapi.json", s.openapi)

	// Who may call a route is bound to the route itself, never decided by
	// reading the path: Fiber matches paths case-insensitively by default,
	// and a path check once let a party key into /V1/ADMIN/.
	limit, small := s.limit, s.controlBody
	party := func(h fiber.Handler) []fiber.Handler { return []fiber.Handler{s.authenticate, limit, small, h} }
	admin := func(h fiber.Handler) []fiber.Handler { return []fiber.Handler{s.authenticateAdmin, limit, small, h} }
	// Only these take a document, counted in the party's volume (readDocument).
	document := func(h fiber.Handler) []fiber.Handler { return []fiber.Handler{s.authenticate, limit, h} }
	app.Post("/v1/documents/:type", document(s.submit)...)
	app.Post("/v1/validate/:type", document(s.validate)...)
	app.Get("/v1/documents/:id", party(s.document)...)
	app.Get("/v1/documents/:id/receipt", party(byParam(s, "id", s.svc.Receipt))...)
	app.Get("/v1/documents/:id/revisions", party(byParam(s, "id", s.revisions))...)
	app.Get("/v1/inbox", party(s.inbox)...)
	app.Post("/v1/inbox/ack", party(s.ack)...)
	app.Get("/v1/events", party(s.events)...)
	app.Get("/v1/shipments", party(s.shipments)...)
	app.Get("/v1/shipments/:ref", party(s.shipment)...)
	app.Post("/v1/shipments/:ref/grants", party(s.grant)...)
	app.Get("/v1/shipments/:ref/grants", party(s.grants)...)
	app.Get("/v1/shipments/:ref/grants/:party", party(s.grantOf)...)
	app.Delete("/v1/shipments/:ref/grants/:party", party(s.revokeGrant)...)
	app.Get("/v1/bills/:ref/title", party(s.title)...)
	app.Post("/v1/bills/:ref/title", party(s.titleAction)...)
	app.Post("/v1/bills/:ref/title/accept", party(s.titleAnswer(func(ctx context.Context, p exchange.Party, ref, reason string) (exchange.Title, error) {
		return s.svc.AnswerTitle(ctx, p, ref, true, reason)
	}))...)
	app.Post("/v1/bills/:ref/title/reject", party(s.titleAnswer(func(ctx context.Context, p exchange.Party, ref, reason string) (exchange.Title, error) {
		return s.svc.AnswerTitle(ctx, p, ref, false, reason)
	}))...)
	app.Post("/v1/bills/:ref/title/withdraw", party(s.titleAnswer(s.svc.WithdrawTitle))...)
	app.Get("/v1/routes", party(s.routingRules)...)
	app.Post("/v1/subscriptions", party(s.subscribe)...)
	app.Get("/v1/subscriptions", party(s.subscriptionList)...)
	app.Get("/v1/subscriptions/:id", party(s.subscription)...)
	app.Delete("/v1/subscriptions/:id", party(s.unsubscribe)...)
	app.Post("/v1/subscriptions/:id/secret", party(s.rotateSecret)...)
	app.Get("/v1/subscriptions/:id/deliveries", party(s.deliveries)...)
	app.Post("/v1/subscriptions/:id/replay", party(s.replay)...)
	app.Get("/v1/schemas", party(s.schemaList)...)
	app.Get("/v1/schemas/:type/:version", party(s.schema)...)
	app.Get("/v1/receipt-key", party(s.receiptKey)...)
	app.Post("/v1/admin/parties", admin(s.createParty)...)
	app.Get("/v1/admin/parties", admin(s.listParties)...)
	app.Post("/v1/admin/parties/:id/keys", admin(s.issueKey)...)
	app.Delete("/v1/admin/parties/:id", admin(deleteByParam(s, "id", s.svc.DisableParty))...)
	app.Delete("/v1/admin/keys/:id", admin(deleteByParam(s, "id", s.svc.RevokeKey))...)
	allowed := methodsByPath(app)
	app.Use(func(c *fiber.Ctx) error {
		if ms := allowed(c.Path()); len(ms) > 0 {
			c.Set(fiber.HeaderAllow, strings.Join(ms, ", "))
			return s.problem(c, fiber.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
				"this endpoint takes "+strings.Join(ms, ", ")+"; see /openapi.json", nil)
		}
		return s.problem(c, fiber.StatusNotFound, "not-found", "Not found", "no such endpoint; see /openapi.json", nil)
	})
}

// methodsByPath returns, for a request path, the methods the app's routes
// take on it (none: no such endpoint), HEAD with each GET. It matches as
// the app routes (CaseSensitive, StrictRouting): segments exactly, a
// :param one segment that is not empty.
func methodsByPath(app *fiber.App) func(path string) []string {
	type route struct {
		method string
		segs   []string
	}
	var routes []route
	for _, r := range app.GetRoutes(true) {
		routes = append(routes, route{r.Method, strings.Split(r.Path, "/")})
	}
	return func(path string) []string {
		segs := strings.Split(path, "/")
		var out []string
		for _, r := range routes {
			if len(r.segs) != len(segs) || slices.Contains(out, r.method) {
				continue
			}
			match := true
			for i, seg := range r.segs {
				if param := strings.HasPrefix(seg, ":"); (param && segs[i] == "") || (!param && seg != segs[i]) {
					match = false
					break
				}
			}
			if match {
				out = append(out, r.method)
			}
		}
		slices.Sort(out)
		return out
	}
}

// recover turns a panic in a handler into a 500 for that request.
func (s *Server) recover(c *fiber.Ctx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("panic in handler", "panic", r, "path", c.Path())
			err = s.problem(c, fiber.StatusInternalServerError, "internal", "Internal error", "the gateway failed on this request; nothing was stored", nil)
		}
	}()
	return c.Next()
}

// DefaultVolumeLimit is 64 MiB of documents per party and minute: over a
// hundred of the largest manifests, and at most about 3 s of checking.
const DefaultVolumeLimit = 64 << 10

// kib is n bytes in KiB, rounded up.
func kib(n int) int { return (n + 1023) / 1024 }

// VolumeKiB is the volume limit in force for limitKiB asked and bodies of up
// to bodyLimit bytes: at least one body, so that every body can pass. A
// shared VolumeLimiter must be made with it.
func VolumeKiB(limitKiB, bodyLimit int) int { return max(limitKiB, kib(bodyLimit)) }

// bucket names the caller's limit buckets: its party's, or the admin
// key's own.
func bucket(c *fiber.Ctx) string {
	if p, ok := c.Locals(partyKey).(exchange.Party); ok {
		return "party:" + p.ID
	}
	return "admin"
}

// limit counts the caller's request against its party's limit and answers
// 429 past it.
func (s *Server) limit(c *fiber.Ctx) error {
	if s.allowed(c, s.requests, 1, "slow down: the rate limit is "+strconv.Itoa(s.cfg.RateLimit)+" requests per "+s.cfg.RateWindow.String()) {
		return c.Next()
	}
	return nil
}

// MaxControlBody bounds the body of a request that carries no document (an
// ack, a grant, a title action, a subscription): the largest, an ack of
// 1,000 ids, is about 30 KB. Such bodies are decoded whole and are not
// counted in the party's volume, so up to the body limit they would cost
// what documents do: a 4 MiB ack of a million ids took encoding/json 140 ms
// and 100 MB before its 400.
const MaxControlBody = 64 << 10

// controlBody answers 413 to a request without a document whose body is
// larger than MaxControlBody.
func (s *Server) controlBody(c *fiber.Ctx) error {
	if len(c.Request().Body()) > MaxControlBody {
		return s.problem(c, fiber.StatusRequestEntityTooLarge, "too-large", "Body too large",
			"a request without a document has a body of at most "+strconv.Itoa(MaxControlBody>>10)+" KiB", nil)
	}
	return c.Next()
}

// allowed takes n from the caller's bucket of l, or answers 429 with detail
// and returns false.
func (s *Server) allowed(c *fiber.Ctx, l RateLimiter, n int, detail string) bool {
	ok, retry, err := l.AllowN(c.UserContext(), bucket(c), n)
	if err != nil || ok {
		return true // an in-process limiter does not fail
	}
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(1, int(math.Ceil(retry.Seconds())))))
	_ = s.problem(c, fiber.StatusTooManyRequests, "too-many-requests", "Too many requests", detail, nil)
	return false
}

// blocked answers 429 to a bucket (key id and address) that had too many
// failed authentications.
func (s *Server) blocked(c *fiber.Ctx, bucket string) bool {
	if b, _ := s.failures.Blocked(c.UserContext(), bucket); !b {
		return false // an in-process limiter does not fail
	}
	c.Set(fiber.HeaderRetryAfter, "60")
	_ = s.problem(c, fiber.StatusTooManyRequests, "too-many-requests", "Too many failed authentications",
		"too many wrong secrets for this key from this address; wait a minute", nil)
	return true
}

// authenticate finds the caller's party from its bearer key.
func (s *Server) authenticate(c *fiber.Ctx) error {
	key, ok := bearer(c)
	bucket := authBucket(key, s.clientIP(c), false)
	if s.blocked(c, bucket) {
		return nil
	}
	if !ok {
		_ = s.failures.Failed(c.UserContext(), bucket)
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="corridor"`)
		return s.problem(c, fiber.StatusUnauthorized, "unauthorized", "Unauthorized", "send your API key as Authorization: Bearer <key>", nil)
	}
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	p, err := s.svc.Authenticate(ctx, key)
	if err != nil {
		if exchange.ErrorCode(err) == exchange.CodeUnauthorized { // (not a backend down: the key may be good)
			_ = s.failures.Failed(c.UserContext(), bucket)
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="corridor", error="invalid_token"`)
		}
		return s.fail(c, err)
	}
	c.Locals(partyKey, p)
	return c.Next()
}

// authenticateAdmin lets through only the admin key (CORRIDOR_ADMIN_KEY).
func (s *Server) authenticateAdmin(c *fiber.Ctx) error {
	bucket := authBucket("", s.clientIP(c), true)
	if s.blocked(c, bucket) {
		return nil
	}
	key, ok := bearer(c)
	sum := sha256.Sum256([]byte(key))
	if !ok || s.cfg.AdminKey == "" || subtle.ConstantTimeCompare(sum[:], s.adminSum[:]) != 1 {
		_ = s.failures.Failed(c.UserContext(), bucket)
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="corridor-admin"`)
		return s.problem(c, fiber.StatusUnauthorized, "unauthorized", "Unauthorized", "the admin API takes the admin key (CORRIDOR_ADMIN_KEY) as a bearer token", nil)
	}
	return c.Next()
}

func bearer(c *fiber.Ctx) (string, bool) {
	h := c.Get(fiber.HeaderAuthorization)
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return "", false
	}
	return strings.Clone(strings.TrimSpace(key)), true
}

func caller(c *fiber.Ctx) exchange.Party {
	p, _ := c.Locals(partyKey).(exchange.Party)
	return p
}

// observe logs each request and counts it.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := s.app.ErrorHandler(c, err); herr != nil {
			c.Status(fiber.StatusInternalServerError)
		}
	}
	status := c.Response().StatusCode()
	// Label values outlive the request: copy them out of fasthttp's
	// reused buffers (a bare c.Method() turned into "GETT" here).
	method := utils.CopyString(c.Method())
	route := utils.CopyString(c.Route().Path)
	if status == fiber.StatusNotFound && route == "/" && c.Path() != "/" {
		route = "unmatched"
	}
	elapsed := time.Since(start)
	s.metrics.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
	attrs := []any{"method", method, "path", utils.CopyString(c.Path()), "status", status, "ms", elapsed.Milliseconds(),
		"ip", s.clientIP(c), "request_id", utils.CopyString(c.GetRespHeader(fiber.HeaderXRequestID))}
	if p := caller(c); p.ID != "" {
		attrs = append(attrs, "party", p.ID)
	}
	s.log.Info("request", attrs...)
	return nil
}

type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	submitted *prometheus.CounterVec
	delivered prometheus.Counter
	acked     prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "corridor_http_requests_total",
			Help: "HTTP requests by method, route and status."}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "corridor_http_request_duration_seconds",
			Help: "HTTP request duration by method and route.", Buckets: prometheus.DefBuckets}, []string{"method", "route"}),
		submitted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "corridor_documents_submitted_total",
			Help: "Documents accepted, by type and outcome (created or replayed)."}, []string{"type", "outcome"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "corridor_inbox_messages_pulled_total",
			Help: "Inbox messages handed to recipients (redeliveries included)."}),
		acked: prometheus.NewCounter(prometheus.CounterOpts{Name: "corridor_inbox_messages_acked_total",
			Help: "Inbox messages acknowledged."}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.submitted, m.delivered, m.acked,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
