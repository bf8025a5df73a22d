package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	goredis "github.com/redis/go-redis/v9"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// benchKind is a document the bench can make distinct and valid over and
// over: a demo document whose one field (a number the gateway keys it by)
// gets a fresh value in every request, sent by the party the demo sends it as.
type benchKind struct {
	Type, Sender, File, Field string
}

// benchKinds are the types the gateway accepts again and again on the demo
// shipment with only their number changed (a customs response is not here:
// it answers one declaration, once).
var benchKinds = []benchKind{
	{"tracking-event", "cq-rail", "documents/05-event-gate-in-chongqing.json", "eventID"},
	{"one-bill", "cq-mto", "documents/01-one-bill.json", "transportDocumentReference"},
	{"rail-consignment-note", "cq-rail", "documents/02-rail-consignment-note.json", "consignmentNumber"},
	{"customs-declaration", "cq-autoparts", "documents/03-export-declaration.json", "declarationNumber"},
	{"sea-bill", "beibu-line", "documents/09-sea-bill.json", "transportDocumentReference"},
	{"cargo-manifest", "beibu-line", "documents/10-sea-manifest-qinzhou.json", "manifestNumber"},
}

type benchOptions struct {
	server      string
	keys        map[string]string
	demoDir     string
	types       []string
	clients     int
	rate        float64
	duration    time.Duration
	count       int64
	sampleEvery time.Duration
	redisURL    string
	ack         bool
	asJSON      bool
	s3          storageFlags
	// perShipment, when positive, files the tracking events in shipments
	// of that many: a one bill of its own opens each (benchShipments).
	perShipment int64
}

func benchCommand() *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench [-c N | --rate R] [--duration D | -n N]",
		Short: "Drive a running gateway with distinct, valid documents and measure it",
		Long: `Submit distinct, valid documents to a running gateway and print the rate and
the p50/p90/p99/max latency by document type and HTTP status.

By default the documents are tracking events of the demo shipment
(CQNL2026000187, published by cq-rail), each with an eventID of its own;
--events-per-shipment N files them in shipments of N events instead, each
opened by a one bill of its own (sent as cq-mto before its first event,
counted apart and not timed: an event's latency starts once its shipment
is open), as real traffic would: one shipment of every event keeps the
gateway's lists of it larger than any real shipment's.
--type names others (one-bill, rail-consignment-note, customs-declaration,
sea-bill, cargo-manifest; "mix" for all in turn): each is its demo document
with its number made unique. They are sent as the demo parties, with the
keys cor.demo-<party>.demo of a gateway run with --demo, unless --keys
gives a party's key. Each run uses numbers of its own, so a later run
against the same gateway does not replay an earlier one.

Closed loop (the default): -c clients, each sending its next document as
soon as the last is answered. Open loop (--rate R): R documents a second on
schedule, from up to -c clients at once (64 unless -c is given); a latency
counts from the planned send time, so a gateway that falls behind shows as
queueing instead of fewer requests. The run ends after --duration or -n
documents, whichever comes first.

With --s3-endpoint (and --s3-access-key, --s3-secret-key, --s3-bucket), it
first times raw PutObject of the same bodies, from the same clients, against
that endpoint (into a bucket of its own, not the gateway's), then the
gateway, and prints the ratio of the two rates.

--sample-every prints, per interval, the rate, p99, the gateway's RSS (from
its /metrics) and, with --redis-url, Redis's used_memory and how many AOF
rewrites it has made (a rewrite writes the whole dataset while every write
waits for its fsync: slow intervals often have one); with ten intervals
or more it compares the first five with the last five (a soak: p99 and RSS
within 1.2x) and checks that Redis is flat: what it grew by over the last
five, kept up for as long as the whole run, must leave it within 1.2x (its
first minutes are no measure: a fresh Redis fills them with what it keeps
for a window, dedupe marks and records). --ack also pulls and acks the
inboxes of the parties the receipts name, as their consumers would, so
that Redis holds only what is in flight.

The gateway's per-party limits (--rate-limit, 1200 requests a minute, and
--volume-limit, 64 MiB of documents a minute, by default) answer 429 long
before the gateway is busy: run it with higher ones.`,
		Example: `  corridor bench -c 16 --duration 30s
  corridor bench --rate 200 --duration 30m --sample-every 1m --ack --redis-url redis://127.0.0.1:6379/0
  corridor bench -c 4 -n 5000 --s3-endpoint 127.0.0.1:9000 --s3-access-key K --s3-secret-key S
  corridor bench --type mix -n 600 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The raw PutObject phase runs only when asked on the command line:
			// in a deployment CORRIDOR_S3_* name the gateway's own bucket.
			if err := envDefaults(cmd, "s3-"); err != nil {
				return err
			}
			if o.duration <= 0 && o.count <= 0 {
				return usage(cmd, "give --duration or -n")
			}
			if o.rate < 0 || o.clients < 1 {
				return usage(cmd, "-c must be at least 1 and --rate positive")
			}
			if o.perShipment < 0 || (o.perShipment > 0 && (len(o.types) != 1 || o.types[0] != "tracking-event")) {
				return usage(cmd, "--events-per-shipment is a positive count, for --type tracking-event")
			}
			if o.rate > 0 && !cmd.Flags().Changed("clients") {
				o.clients = 64
			}
			return runBench(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.server, "server", "http://127.0.0.1:8080", "gateway URL")
	fs.StringToStringVar(&o.keys, "keys", nil, "API keys by party (party=key,...); the demo keys for the others")
	fs.StringVar(&o.demoDir, "demo-dir", "deploy/demo", "folder of the demo corridor, whose documents are the templates")
	fs.StringSliceVar(&o.types, "type", []string{"tracking-event"}, "document types to send in turn, or mix for all")
	fs.IntVarP(&o.clients, "clients", "c", 4, "clients sending at once (open loop: at most this many in flight)")
	fs.Float64Var(&o.rate, "rate", 0, "open loop: documents a second, on schedule (0: closed loop)")
	fs.DurationVar(&o.duration, "duration", 0, "how long to send")
	fs.Int64VarP(&o.count, "count", "n", 0, "how many documents to send")
	fs.DurationVar(&o.sampleEvery, "sample-every", 0, "print rate, p99, the gateway's RSS and Redis memory at this interval")
	fs.StringVar(&o.redisURL, "redis-url", "", "the gateway's Redis, to sample its used_memory")
	fs.BoolVar(&o.ack, "ack", false, "pull and ack the recipients' inboxes while sending")
	fs.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	fs.Int64Var(&o.perShipment, "events-per-shipment", 0, "file the tracking events in shipments of this many, each opened by a one bill (0: all in the demo shipment)")
	fs.StringVar(&o.s3.S3Endpoint, "s3-endpoint", "", "S3 or MinIO host:port: first time raw PutObject of the same bodies there")
	fs.StringVar(&o.s3.S3Bucket, "s3-bucket", "corridor-bench", "bucket for the raw PutObject (made if missing; not the gateway's)")
	fs.StringVar(&o.s3.S3AccessKey, "s3-access-key", "", "S3 access key")
	fs.StringVar(&o.s3.S3SecretKey, "s3-secret-key", "", "S3 secret key")
	fs.BoolVar(&o.s3.S3Secure, "s3-secure", false, "use https to reach S3")
	return cmd
}

// benchDoc is a template split around the value that makes each document distinct.
type benchDoc struct {
	benchKind
	key        string
	head, tail []byte
	happened   []byte // a tracking event's eventDateTime in the template, quoted: sent as now
}

func (d *benchDoc) body(unique string) []byte {
	b := make([]byte, 0, len(d.head)+len(unique)+len(d.tail))
	return append(append(append(b, d.head...), unique...), d.tail...)
}

// benchDocs loads the templates of the chosen types.
func benchDocs(o *benchOptions) ([]*benchDoc, error) {
	var docs []*benchDoc
	for _, t := range o.types {
		for _, k := range benchKinds {
			if t != k.Type && t != "mix" {
				continue
			}
			raw, err := os.ReadFile(filepath.Join(o.demoDir, k.File))
			if err != nil {
				return nil, fmt.Errorf("template of %s: %w (set --demo-dir)", k.Type, err)
			}
			loc := regexp.MustCompile(`"` + k.Field + `"\s*:\s*"([^"]*)"`).FindSubmatchIndex(raw)
			if loc == nil {
				return nil, fmt.Errorf("template of %s: no %s", k.Type, k.Field)
			}
			key := o.keys[k.Sender]
			if key == "" {
				key = "cor.demo-" + k.Sender + ".demo"
			}
			d := &benchDoc{benchKind: k, key: key, head: raw[:loc[2]], tail: raw[loc[3]:]}
			if at := regexp.MustCompile(`"eventDateTime"\s*:\s*("[^"]*")`).FindSubmatch(d.tail); k.Type == "tracking-event" && at != nil {
				d.happened = at[1]
			}
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no such type among %v: %s", benchTypes(), strings.Join(o.types, ","))
	}
	return docs, nil
}

func benchTypes() []string {
	var ts []string
	for _, k := range benchKinds {
		ts = append(ts, k.Type)
	}
	return append(ts, "mix")
}

// benchReport is what a run prints (--json: as JSON).
type benchReport struct {
	Raw     *benchResult  `json:"rawPut,omitempty"`
	Gateway *benchResult  `json:"gateway"`
	Ratio   float64       `json:"ratio,omitempty"` // gateway 2xx/s over raw 2xx/s
	Drained int64         `json:"acked,omitempty"`
	Samples []benchSample `json:"samples,omitempty"`
	// Shipments opened (their one bills answered 201) and refused, with
	// --events-per-shipment.
	Shipments        int64      `json:"shipmentsOpened,omitempty"`
	ShipmentsRefused int64      `json:"shipmentsRefused,omitempty"`
	Soak             *soakCheck `json:"soak,omitempty"`
}

type benchResult struct {
	Target     string       `json:"target"`
	Mode       string       `json:"mode"`
	Clients    int          `json:"clients"`
	TargetRate float64      `json:"targetRate,omitempty"`
	Requests   int64        `json:"requests"`
	Seconds    float64      `json:"seconds"`
	PerSecond  float64      `json:"perSecond"`
	OKRate     float64      `json:"okPerSecond"`
	BodyBytes  int          `json:"meanBodyBytes"`
	Groups     []benchGroup `json:"groups"`
}

// benchGroup is the latency of one type and status, in milliseconds.
type benchGroup struct {
	Type      string  `json:"type"`
	Status    string  `json:"status"`
	Count     int64   `json:"count"`
	PerSecond float64 `json:"perSecond"`
	P50       float64 `json:"p50ms"`
	P90       float64 `json:"p90ms"`
	P99       float64 `json:"p99ms"`
	Max       float64 `json:"maxms"`
	Answer    string  `json:"firstAnswer,omitempty"` // of a status that is not 2xx
}

type benchSample struct {
	At         float64 `json:"atSeconds"` // since the start, at the interval's end
	Requests   int64   `json:"requests"`
	PerSecond  float64 `json:"perSecond"`
	P99        float64 `json:"p99ms"`
	RSS        int64   `json:"rssBytes,omitempty"`
	RedisBytes int64   `json:"redisUsedMemory,omitempty"`
	// AOFRewrites counts Redis's AOF rewrites so far: a rewrite forks Redis
	// and writes its whole dataset while every write still waits for its
	// fsync, so a slow interval often has one.
	AOFRewrites int64 `json:"redisAofRewrites,omitempty"`
	hist        *hdrhistogram.Histogram
}

type soakCheck struct {
	Window   int     `json:"window"` // intervals at each end
	P99First float64 `json:"p99FirstMs"`
	P99Last  float64 `json:"p99LastMs"`
	P99Ratio float64 `json:"p99Ratio"`
	RSSRatio float64 `json:"rssRatio"`
	// RedisProjected is Redis' memory at the end, with what it grew by over
	// the last intervals added once more for each as long a stretch of the
	// run, over its memory at the end: 1 when flat, and above 1.2 when, kept
	// up for another run, that growth would leave it more than 1.2x.
	RedisProjected float64 `json:"redisProjected,omitempty"`
	// RedisPerRequest is what Redis' memory grew by per request over the
	// last intervals: what a document costs it once the run is steady.
	RedisPerRequest float64 `json:"redisBytesPerRequestLast,omitempty"`
	OK              bool    `json:"ok"`
}

// benchRecorder keeps one histogram (microseconds) per type and status,
// so memory stays bounded however long the run.
type benchRecorder struct {
	mu       sync.Mutex
	groups   map[[2]string]*hdrhistogram.Histogram
	answers  map[[2]string]string
	interval *hdrhistogram.Histogram
	done     atomic.Int64
	bytes    atomic.Int64 // of the bodies sent
}

func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(10*time.Minute/time.Microsecond), 3)
}

func (r *benchRecorder) record(typ, status string, lat time.Duration, answer []byte) {
	us := max(lat.Microseconds(), 1)
	r.mu.Lock()
	k := [2]string{typ, status}
	h := r.groups[k]
	if h == nil {
		h = newHist()
		r.groups[k] = h
		if !strings.HasPrefix(status, "2") {
			r.answers[k] = strings.TrimSpace(string(answer[:min(len(answer), 500)]))
		}
	}
	_ = h.RecordValue(us)
	_ = r.interval.RecordValue(us)
	r.mu.Unlock()
	r.done.Add(1)
}

// takeInterval returns the interval's histogram and starts a new one.
func (r *benchRecorder) takeInterval() *hdrhistogram.Histogram {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.interval
	r.interval = newHist()
	return h
}

// prepareFunc readies one body before it is timed (--events-per-shipment:
// its shipment opened first), reporting whether it waited for that.
type prepareFunc func(ctx context.Context, body []byte, seq int64) ([]byte, bool)

// sendFunc sends one body and answers with its status ("error" when there
// was no answer) and the answer's body.
type sendFunc func(ctx context.Context, d *benchDoc, body []byte, seq int64) (string, []byte)

// benchJob is one document to send; planned is zero in a closed loop.
type benchJob struct {
	seq     int64
	planned time.Time
}

func runBench(ctx context.Context, out, errw io.Writer, o *benchOptions) error {
	docs, err := benchDocs(o)
	if err != nil {
		return err
	}
	var run [5]byte
	_, _ = rand.Read(run[:])
	runID := base32.StdEncoding.EncodeToString(run[:])[:8]
	rep := &benchReport{}
	if o.s3.S3Endpoint != "" {
		send, err := rawPutSender(ctx, o, runID)
		if err != nil {
			return err
		}
		rep.Raw = o.drive(ctx, errw, "raw PutObject "+o.s3.S3Endpoint+"/"+o.s3.S3Bucket, docs, runID, send, nil, nil)
	}
	hc := &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.clients + 8}}
	base := strings.TrimRight(o.server, "/")
	var drain *benchDrainer
	if o.ack {
		drain = &benchDrainer{o: o, base: base, stop: make(chan struct{}), running: map[string]bool{}}
	}
	var ships *benchShipments
	var prepare prepareFunc
	if o.perShipment > 0 {
		if ships, err = newBenchShipments(o, runID, hc, base); err != nil {
			return err
		}
		prepare = ships.file
	}
	gatewaySend := func(ctx context.Context, d *benchDoc, body []byte, _ int64) (string, []byte) {
		st, data, err := benchPost(ctx, hc, base+"/v1/documents/"+d.Type, d.key, body)
		if err != nil {
			return "error", []byte(err.Error())
		}
		if drain != nil && st == http.StatusCreated {
			drain.receipt(data)
		}
		return strconv.Itoa(st), data
	}
	var sampler *benchSampler
	if o.sampleEvery > 0 {
		sampler = &benchSampler{o: o, out: out, hc: hc, base: base}
		if o.redisURL != "" {
			opt, err := goredis.ParseURL(o.redisURL)
			if err != nil {
				return fmt.Errorf("--redis-url: %w", err)
			}
			// A sample must not wait for a Redis that does not answer.
			opt.DialTimeout, opt.ReadTimeout, opt.MaxRetries = time.Second, time.Second, -1
			sampler.redis = goredis.NewClient(opt)
			defer sampler.redis.Close()
		}
	}
	rep.Gateway = o.drive(ctx, errw, "gateway "+base, docs, runID, gatewaySend, prepare, sampler)
	if drain != nil {
		rep.Drained = drain.close()
	}
	if ships != nil {
		rep.Shipments, rep.ShipmentsRefused = ships.opened.Load(), ships.refused.Load()
	}
	if rep.Raw != nil && rep.Raw.OKRate > 0 {
		rep.Ratio = rep.Gateway.OKRate / rep.Raw.OKRate
	}
	if sampler != nil {
		rep.Samples = sampler.samples
		rep.Soak = soak(sampler.samples)
	}
	if o.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printBench(out, rep)
	return nil
}

// benchShipments opens the shipments of --events-per-shipment: the one bill
// of a shipment is sent once, before its first event, and its other events
// wait for its answer.
type benchShipments struct {
	per, base string
	n         int64
	bill      *benchDoc
	hc        *http.Client
	mu        sync.Mutex
	answered  map[int64]chan struct{} // closed once the shipment's bill is answered
	opened    atomic.Int64
	refused   atomic.Int64
}

// demoBill is the bill number the event template names.
var demoBill = []byte(`"CQNL2026000187"`)

func newBenchShipments(o *benchOptions, runID string, hc *http.Client, base string) (*benchShipments, error) {
	docs, err := benchDocs(&benchOptions{demoDir: o.demoDir, keys: o.keys, types: []string{"one-bill"}})
	if err != nil {
		return nil, err
	}
	return &benchShipments{per: "BENCH-" + runID + "-S", n: o.perShipment, bill: docs[0], hc: hc, base: base,
		answered: map[int64]chan struct{}{}}, nil
}

// file returns an event's body (the seq-th event) naming its shipment's
// bill, once that bill was answered (waited: it sent or waited for it).
func (s *benchShipments) file(ctx context.Context, body []byte, seq int64) (_ []byte, waited bool) {
	k := seq / s.n
	ref := s.per + strconv.FormatInt(k, 10)
	s.mu.Lock()
	ch, sent := s.answered[k]
	if !sent {
		ch = make(chan struct{})
		s.answered[k] = ch
	}
	s.mu.Unlock()
	if sent {
		select {
		case <-ch:
		default:
			waited = true
			select {
			case <-ch:
			case <-ctx.Done():
			}
		}
	} else {
		waited = true
		st, _, err := benchPost(ctx, s.hc, s.base+"/v1/documents/one-bill", s.bill.key, s.bill.body(ref))
		if err == nil && st == http.StatusCreated {
			s.opened.Add(1)
		} else {
			s.refused.Add(1) // (its events are refused: they show among the results)
		}
		close(ch)
	}
	return bytes.Replace(body, demoBill, []byte(`"`+ref+`"`), 1), waited
}

func benchPost(ctx context.Context, hc *http.Client, url, key string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, data, err
}

// rawPutSender makes the bucket if it is missing and sends each body with
// PutObject, its exact length and a seekable reader.
func rawPutSender(ctx context.Context, o *benchOptions, runID string) (sendFunc, error) {
	mc, err := minio.New(o.s3.S3Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(o.s3.S3AccessKey, o.s3.S3SecretKey, ""), Secure: o.s3.S3Secure,
		Transport: &http.Transport{MaxIdleConnsPerHost: o.clients + 8},
	})
	if err != nil {
		return nil, fmt.Errorf("raw PutObject: %w", err)
	}
	ok, err := mc.BucketExists(ctx, o.s3.S3Bucket)
	if err == nil && !ok {
		err = mc.MakeBucket(ctx, o.s3.S3Bucket, minio.MakeBucketOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("raw PutObject: bucket %s: %w", o.s3.S3Bucket, err)
	}
	prefix := "bench/" + runID + "/"
	return func(ctx context.Context, _ *benchDoc, body []byte, seq int64) (string, []byte) {
		_, err := mc.PutObject(ctx, o.s3.S3Bucket, prefix+strconv.FormatInt(seq, 10), bytes.NewReader(body), int64(len(body)),
			minio.PutObjectOptions{ContentType: "application/json"})
		if err != nil {
			return "error", []byte(err.Error())
		}
		return "200", nil
	}, nil
}

// drive sends documents, closed or open loop, until the count or the
// duration is reached or ctx ends, and returns what it measured.
func (o *benchOptions) drive(ctx context.Context, errw io.Writer, target string, docs []*benchDoc, runID string, send sendFunc, prepare prepareFunc, sampler *benchSampler) *benchResult {
	rec := &benchRecorder{groups: map[[2]string]*hdrhistogram.Histogram{}, answers: map[[2]string]string{}, interval: newHist()}
	// In-flight requests finish when ctx ends (Ctrl-C), so what was sent is counted.
	reqCtx := context.WithoutCancel(ctx)
	jobs := make(chan benchJob)
	var wg sync.WaitGroup
	for range o.clients {
		wg.Go(func() {
			for j := range jobs {
				d := docs[int(j.seq)%len(docs)]
				body := d.body(fmt.Sprintf("BENCH-%s-%d", runID, j.seq))
				if d.happened != nil { // events happen as they are sent, as a stream of them would
					body = bytes.Replace(body, d.happened, []byte(`"`+time.Now().UTC().Format(time.RFC3339)+`"`), 1)
				}
				waited := false
				if prepare != nil {
					body, waited = prepare(reqCtx, body, j.seq)
				}
				// From the planned time (open loop), or from when the
				// document could go: now (closed loop), or once its
				// shipment was opened if it waited for that.
				start := j.planned
				if now := time.Now(); start.IsZero() || (waited && now.After(start)) {
					start = now
				}
				status, answer := send(reqCtx, d, body, j.seq)
				rec.record(d.Type, status, time.Since(start), answer)
				rec.bytes.Add(int64(len(body)))
			}
		})
	}

	bar := o.progress(errw, target)
	start := time.Now()
	end := start.Add(o.duration)
	stopBar := make(chan struct{})
	barDone := make(chan struct{})
	go func() {
		defer close(barDone)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		var next time.Time
		if sampler != nil {
			next = start.Add(o.sampleEvery)
			sampler.start, sampler.last = start, start
		}
		for {
			select {
			case <-stopBar:
				return
			case now := <-t.C:
				if o.count > 0 {
					_ = bar.Set64(rec.done.Load())
				} else {
					_ = bar.Set64(int64(now.Sub(start) / time.Second))
				}
				if sampler != nil && !now.Before(next) {
					_ = bar.Clear()
					sampler.sample(ctx, now, rec.takeInterval())
					next = next.Add(o.sampleEvery)
				}
			}
		}
	}()

	for i := int64(0); ctx.Err() == nil; i++ {
		if o.count > 0 && i >= o.count {
			break
		}
		var planned time.Time
		if o.rate > 0 {
			planned = start.Add(time.Duration(float64(i) * float64(time.Second) / o.rate))
			if o.duration > 0 && !planned.Before(end) {
				break
			}
			if d := time.Until(planned); d > 0 {
				time.Sleep(d)
			}
		} else if o.duration > 0 && !time.Now().Before(end) {
			break
		}
		select {
		case jobs <- benchJob{seq: i, planned: planned}:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	close(stopBar)
	<-barDone
	_ = bar.Finish()
	fmt.Fprintln(errw)
	if sampler != nil {
		// The last, partial interval counts when it is at least half of one.
		if now := start.Add(elapsed); now.Sub(sampler.last) >= o.sampleEvery/2 {
			sampler.sample(ctx, now, rec.takeInterval())
		}
	}
	return rec.result(o, target, elapsed)
}

func (o *benchOptions) progress(errw io.Writer, target string) *progressbar.ProgressBar {
	throttle := progressbar.OptionThrottle(200 * time.Millisecond)
	if o.count > 0 {
		return newBar(errw, o.count, target, throttle)
	}
	return newBar(errw, int64(o.duration/time.Second), target+" (s)", throttle)
}

func (r *benchRecorder) result(o *benchOptions, target string, elapsed time.Duration) *benchResult {
	res := &benchResult{Target: target, Mode: "closed", Clients: o.clients, TargetRate: o.rate, Seconds: elapsed.Seconds()}
	if o.rate > 0 {
		res.Mode = "open"
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	for k, h := range r.groups {
		g := benchGroup{Type: k[0], Status: k[1], Count: h.TotalCount(), PerSecond: float64(h.TotalCount()) / elapsed.Seconds(),
			P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)), P99: ms(h.ValueAtQuantile(99)), Max: ms(h.Max()), Answer: r.answers[k]}
		res.Groups = append(res.Groups, g)
		res.Requests += g.Count
		if strings.HasPrefix(g.Status, "2") {
			res.OKRate += g.PerSecond
		}
	}
	slices.SortFunc(res.Groups, func(a, b benchGroup) int { return strings.Compare(a.Type+" "+a.Status, b.Type+" "+b.Status) })
	res.PerSecond = float64(res.Requests) / elapsed.Seconds()
	if res.Requests > 0 {
		res.BodyBytes = int(r.bytes.Load() / res.Requests)
	}
	return res
}

// benchSampler reads the gateway's RSS and Redis's memory at each interval.
type benchSampler struct {
	o       *benchOptions
	out     io.Writer
	hc      *http.Client
	base    string
	redis   *goredis.Client
	samples []benchSample
	// start of the run and end of the last interval sampled
	start, last time.Time
}

// sample closes the interval ending now, whose latencies h holds, and
// prints it with the gateway's RSS and Redis's memory.
func (s *benchSampler) sample(ctx context.Context, now time.Time, h *hdrhistogram.Histogram) {
	at, span := now.Sub(s.start), now.Sub(s.last)
	s.last = now
	smp := benchSample{At: at.Seconds(), Requests: h.TotalCount(), PerSecond: float64(h.TotalCount()) / span.Seconds(),
		P99: float64(h.ValueAtQuantile(99)) / 1000, hist: h}
	smp.RSS = s.rss(ctx)
	if s.redis != nil {
		smp.RedisBytes = redisInfo(ctx, s.redis, "memory", "used_memory")
		smp.AOFRewrites = redisInfo(ctx, s.redis, "persistence", "aof_rewrites")
	}
	if len(s.samples) == 0 && !s.o.asJSON {
		fmt.Fprintf(s.out, "%8s %9s %8s %8s %8s %9s %12s\n", "at", "requests", "rate/s", "p99 ms", "RSS MB", "Redis MB", "AOF rewrites")
	}
	s.samples = append(s.samples, smp)
	if !s.o.asJSON {
		redis, rewrites := "-", "-"
		if s.redis != nil {
			redis, rewrites = fmt.Sprintf("%.1f", float64(smp.RedisBytes)/(1<<20)), strconv.FormatInt(smp.AOFRewrites, 10)
		}
		fmt.Fprintf(s.out, "%8s %9d %8.1f %8.1f %8.1f %9s %12s\n", at.Round(time.Second), smp.Requests, smp.PerSecond, smp.P99,
			float64(smp.RSS)/(1<<20), redis, rewrites)
	}
}

// rss reads process_resident_memory_bytes from the gateway's /metrics (0 when it cannot).
func (s *benchSampler) rss(ctx context.Context) int64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/metrics", nil)
	if err != nil {
		return 0
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "process_resident_memory_bytes "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f)
		}
	}
	return 0
}

// redisInfo reads a number from a section of INFO (0 when it cannot).
func redisInfo(ctx context.Context, c *goredis.Client, section, field string) int64 {
	info, err := c.Info(ctx, section).Result()
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), field+":"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// soak compares the first intervals with the last: five of each, or half
// the intervals when there are fewer than ten.
func soak(samples []benchSample) *soakCheck {
	if len(samples) < 2 {
		return nil
	}
	w := min(5, len(samples)/2)
	first, last := samples[:w], samples[len(samples)-w:]
	p99 := func(ss []benchSample) float64 {
		h := newHist()
		for _, s := range ss {
			h.Merge(s.hist)
		}
		return float64(h.ValueAtQuantile(99)) / 1000
	}
	mean := func(ss []benchSample, f func(benchSample) int64) float64 {
		var sum float64
		for _, s := range ss {
			sum += float64(f(s))
		}
		return sum / float64(len(ss))
	}
	ratio := func(f func(benchSample) int64) float64 {
		if a := mean(first, f); a > 0 {
			return mean(last, f) / a
		}
		return 0
	}
	c := &soakCheck{Window: w, P99First: p99(first), P99Last: p99(last)}
	if c.P99First > 0 {
		c.P99Ratio = c.P99Last / c.P99First
	}
	c.RSSRatio = ratio(func(s benchSample) int64 { return s.RSS })
	// Redis is judged by its growth at the end, not against its first
	// intervals, in which a fresh Redis fills with what it keeps for a window.
	var requests int64
	for _, s := range last {
		requests += s.Requests
	}
	if before, end := samples[len(samples)-w-1], last[w-1]; before.RedisBytes > 0 && end.RedisBytes > 0 && requests > 0 {
		grown := float64(end.RedisBytes - before.RedisBytes)
		c.RedisPerRequest = grown / float64(requests)
		c.RedisProjected = (float64(end.RedisBytes) + grown*float64(len(samples))/float64(w)) / float64(end.RedisBytes)
	}
	c.OK = c.P99Ratio <= 1.2 && c.RSSRatio <= 1.2 && c.RedisProjected <= 1.2
	return c
}

// benchDrainer pulls and acks the inbox of every party a receipt names, as
// its consumer would.
type benchDrainer struct {
	o       *benchOptions
	base    string
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	running map[string]bool
	acked   atomic.Int64
}

func (d *benchDrainer) receipt(data []byte) {
	var r struct {
		Recipients []string `json:"recipients"`
	}
	if json.Unmarshal(data, &r) != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range r.Recipients {
		if d.running[p] {
			continue
		}
		d.running[p] = true
		key := d.o.keys[p]
		if key == "" {
			key = "cor.demo-" + p + ".demo"
		}
		d.wg.Add(1)
		go d.drain(key)
	}
}

func (d *benchDrainer) drain(key string) {
	defer d.wg.Done()
	hc := &http.Client{Timeout: 30 * time.Second}
	for {
		select {
		case <-d.stop:
			return
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, d.base+"/v1/inbox?limit=100&wait=1", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := hc.Do(req)
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		var in struct {
			Messages []struct {
				ID string `json:"id"`
			} `json:"messages"`
		}
		err = json.NewDecoder(resp.Body).Decode(&in)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(in.Messages) == 0 {
			if resp.StatusCode != http.StatusOK {
				time.Sleep(time.Second)
			}
			continue
		}
		ids := make([]string, len(in.Messages))
		for i, m := range in.Messages {
			ids[i] = m.ID
		}
		body, _ := json.Marshal(map[string][]string{"ids": ids})
		if st, _, err := benchPost(context.Background(), hc, d.base+"/v1/inbox/ack", key, body); err == nil && st == http.StatusOK {
			d.acked.Add(int64(len(ids)))
		}
	}
}

func (d *benchDrainer) close() int64 {
	close(d.stop)
	d.wg.Wait()
	return d.acked.Load()
}

func printBench(w io.Writer, rep *benchReport) {
	for _, r := range []*benchResult{rep.Raw, rep.Gateway} {
		if r == nil {
			continue
		}
		loop := fmt.Sprintf("closed loop, %d clients", r.Clients)
		if r.Mode == "open" {
			loop = fmt.Sprintf("open loop at %g/s, up to %d in flight", r.TargetRate, r.Clients)
		}
		fmt.Fprintf(w, "%s: %s, %d requests (%d bytes a body) in %.1fs: %.1f/s, %.1f/s answered 2xx\n",
			r.Target, loop, r.Requests, r.BodyBytes, r.Seconds, r.PerSecond, r.OKRate)
		fmt.Fprintf(w, "  %-22s %6s %8s %8s %8s %8s %8s %8s\n", "type", "status", "count", "rate/s", "p50 ms", "p90 ms", "p99 ms", "max ms")
		for _, g := range r.Groups {
			fmt.Fprintf(w, "  %-22s %6s %8d %8.1f %8.2f %8.2f %8.2f %8.2f\n", g.Type, g.Status, g.Count, g.PerSecond, g.P50, g.P90, g.P99, g.Max)
		}
		for _, g := range r.Groups {
			if g.Answer != "" {
				fmt.Fprintf(w, "  first %s answer to %s: %s\n", g.Status, g.Type, g.Answer)
			}
		}
	}
	if rep.Raw != nil {
		fmt.Fprintf(w, "gateway/raw PutObject: %.2f (%.1f/s vs %.1f/s)\n", rep.Ratio, rep.Gateway.OKRate, rep.Raw.OKRate)
	}
	if rep.Shipments+rep.ShipmentsRefused > 0 {
		fmt.Fprintf(w, "opened %d shipments (one bill each, not counted above), %d refused\n", rep.Shipments, rep.ShipmentsRefused)
	}
	if rep.Drained > 0 {
		fmt.Fprintf(w, "acked %d inbox messages while sending\n", rep.Drained)
	}
	if c := rep.Soak; c != nil {
		verdict := "holds"
		if !c.OK {
			verdict = "does NOT hold"
		}
		fmt.Fprintf(w, "soak, first %d intervals vs last %d: p99 %.1f -> %.1f ms (x%.2f), RSS x%.2f", c.Window, c.Window, c.P99First, c.P99Last, c.P99Ratio, c.RSSRatio)
		if c.RedisProjected > 0 {
			fmt.Fprintf(w, ", Redis %+.0f bytes a request in the last %d (x%.2f if kept up as long as the run)",
				c.RedisPerRequest, c.Window, c.RedisProjected)
		}
		fmt.Fprintf(w, ": %s (each at most x1.2)\n", verdict)
	}
}
