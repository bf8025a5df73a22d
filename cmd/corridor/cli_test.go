package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func exitCode(err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestValidateCommand(t *testing.T) {
	good := "../../schemas/one-bill/v1.example.json"
	raw, _ := os.ReadFile(good)
	bad := writeFile(t, "bad.json", strings.Replace(strings.Replace(string(raw), "CSQU3054383", "CSQU3054384", -1), `"issueDate": "2026-11-05"`, `"issueDate": "2026-11-07"`, 1))
	notJSON := writeFile(t, "broken.json", `{"documentType":"one-bill",`)
	untyped := writeFile(t, "untyped.json", `{"hello":"world"}`)

	cases := []struct {
		name  string
		typ   string
		files []string
		code  int
		out   []string
	}{
		{"valid, type told from the document", "", []string{good}, 0, []string{good + ": valid one-bill v1"}},
		{"invalid: every problem as FILE: POINTER: DETAIL", "", []string{good, bad}, 1, []string{
			bad + ": /containers/0/containerNumber: Check digit should be 3, not 4",
			bad + ": /goods/0/containerNumber: Check digit should be 3, not 4",
			bad + ": /issueDate: the bill must be issued before the first leg departs",
		}},
		{"malformed JSON is invalid", "one-bill", []string{notJSON}, 1, []string{notJSON + ": : the JSON document ends too early"}},
		{"type cannot be told: usage error", "", []string{untyped}, 2, nil},
		{"missing file: usage error", "", []string{"/nonexistent.json"}, 2, nil},
		{"unknown --type: usage error", "bill-of-anything", []string{good}, 2, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errw bytes.Buffer
			code := exitCode(runValidate(&out, &errw, c.typ, false, c.files))
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, c.code, out.String(), errw.String())
			}
			for _, want := range c.out {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, out.String())
				}
			}
		})
	}

	var out bytes.Buffer
	if code := exitCode(runValidate(&out, &out, "", true, []string{good, bad})); code != 1 {
		t.Fatalf("--json exit %d", code)
	}
	var results []fileResult
	if err := json.Unmarshal(out.Bytes(), &results); err != nil {
		t.Fatalf("--json output %s: %v", out.String(), err)
	}
	if len(results) != 2 || !results[0].Valid || results[1].Valid || len(results[1].Problems) != 3 {
		t.Fatalf("--json results = %+v", results)
	}
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := rootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestPartiesCommand(t *testing.T) {
	data := t.TempDir()
	out, err := runCLI(t, "parties", "add", "th-importer", "--name", "Bangkok Auto Import", "--role", "consignee,declarant", "--country", "TH", "--data", data)
	if err != nil || !strings.Contains(out, "key:    cor.") {
		t.Fatalf("add: %v\n%s", err, out)
	}
	plain := strings.Fields(out[strings.Index(out, "key:    "):])[1]
	_, secret, err := exchange.ParseKey(plain)
	if err != nil {
		t.Fatalf("printed key %q: %v", plain, err)
	}
	if _, err := runCLI(t, "parties", "add", "th-importer", "--name", "Again", "--role", "consignee", "--country", "TH", "--data", data); err == nil {
		t.Fatal("adding the same party twice succeeded")
	}
	if out, err := runCLI(t, "parties", "add", "Bad_Id", "--name", "x", "--role", "pilot", "--country", "XX", "--data", data); err == nil ||
		!strings.Contains(err.Error(), "/id") || !strings.Contains(err.Error(), "/roles/0") || !strings.Contains(err.Error(), "/country") {
		t.Fatalf("invalid party: %v\n%s", err, out)
	}
	out, err = runCLI(t, "parties", "list", "--data", data)
	if err != nil || !strings.Contains(out, "th-importer") || !strings.Contains(out, "active") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "parties", "revoke", "th-importer", "--data", data); err != nil {
		t.Fatal(err)
	}
	out, _ = runCLI(t, "parties", "list", "--data", data)
	if !strings.Contains(out, "revoked") {
		t.Fatalf("after revoke: %s", out)
	}
	// The database holds no key in the clear.
	raw, err := os.ReadFile(filepath.Join(data, "corridor.db"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secret)) {
		t.Fatal("the key's secret is stored in the clear")
	}
}

// One way to reach Redis, and Sentinel only with the master's name.
func TestRedisFlagsMustAgree(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    storageFlags
		want string // "" for no error
	}{
		{"url and cluster", storageFlags{RedisURL: "redis://x", RedisCluster: []string{"a:1"}}, "choose one"},
		{"sentinels and cluster", storageFlags{RedisSentinels: []string{"a:1"}, RedisMaster: "m", RedisCluster: []string{"a:1"}}, "choose one"},
		{"sentinels alone", storageFlags{RedisSentinels: []string{"a:1"}}, "--redis-master"},
		{"master alone", storageFlags{RedisURL: "redis://x", RedisMaster: "m"}, "--redis-sentinels"},
		{"url", storageFlags{RedisURL: "redis://x"}, ""},
		{"sentinel", storageFlags{RedisSentinels: []string{"a:1", "b:2"}, RedisMaster: "m"}, ""},
		{"cluster", storageFlags{RedisCluster: []string{"a:1"}}, ""},
		{"none", storageFlags{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.f.redisMode()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("redisMode() = %v; want an error with %q", err, tc.want)
			}
		})
	}
}

// CORRIDOR_REDIS_SENTINELS and CORRIDOR_REDIS_CLUSTER take comma-separated lists.
func TestRedisFlagsFromEnvironment(t *testing.T) {
	t.Setenv("CORRIDOR_REDIS_SENTINELS", "10.0.2.11:26379,10.0.2.12:26379")
	t.Setenv("CORRIDOR_REDIS_MASTER", "corridor")
	t.Setenv("CORRIDOR_REDIS_CLUSTER", "10.0.2.21:6379,10.0.2.22:6379,10.0.2.23:6379")
	t.Setenv("CORRIDOR_REDIS_WAIT_REPLICAS", "1")
	cmd := serveCommand()
	if err := envDefaults(cmd); err != nil {
		t.Fatal(err)
	}
	fs := cmd.Flags()
	sentinels, _ := fs.GetStringSlice("redis-sentinels")
	cluster, _ := fs.GetStringSlice("redis-cluster")
	master, _ := fs.GetString("redis-master")
	wait, _ := fs.GetInt("redis-wait-replicas")
	if len(sentinels) != 2 || sentinels[1] != "10.0.2.12:26379" || len(cluster) != 3 || master != "corridor" || wait != 1 {
		t.Fatalf("sentinels %q, cluster %q, master %q, wait %d", sentinels, cluster, master, wait)
	}
}

// Progress bars draw on a terminal only: into a pipe, a buffer or a log
// file each redraw would be a line of noise.
func TestProgressBarOnlyOnATerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	for _, w := range []io.Writer{&buf, f} {
		bar := newBar(w, 10, "working")
		_ = bar.Add(5)
		_ = bar.Finish()
	}
	st, _ := f.Stat()
	if buf.Len() != 0 || st.Size() != 0 {
		t.Errorf("a bar drew %d bytes into a buffer and %d into a file: %q", buf.Len(), st.Size(), buf.String())
	}
}

func TestRequeueSince(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"30m":                  now.Add(-30 * time.Minute),
		"2026-11-27T09:00:00Z": time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC),
	} {
		if got, err := requeueSince(in, now); err != nil || !got.Equal(want) {
			t.Errorf("requeueSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"yesterday", "-5m", "2026-11-27"} {
		if _, err := requeueSince(in, now); err == nil || !strings.Contains(err.Error(), "--requeue-since") {
			t.Errorf("requeueSince(%q) = %v; want an error naming the flag", in, err)
		}
	}
}

// --redis-record-ttl reaches the Redis store, which refuses one shorter
// than the dedupe window.
func TestRedisRecordTTLFlag(t *testing.T) {
	ctx := context.Background()
	f := storageFlags{Data: t.TempDir(), RedisURL: testenv.RedisURL(t), RedisPrefix: testenv.Prefix(), RedisRecordTTL: 30 * time.Minute}
	if b, err := f.open(ctx); err == nil || !strings.Contains(err.Error(), "RecordTTL") {
		if err == nil {
			b.close()
		}
		t.Fatalf("open with a 30m record TTL and a 1h window: %v; want refused", err)
	}
	f.RedisRecordTTL = 2 * time.Hour
	b, err := f.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if b.redis.RecordTTL != 2*time.Hour {
		t.Fatalf("the store keeps records %s; want 2h", b.redis.RecordTTL)
	}
}

// The commands beside the gateways take the settings they share on Redis
// from it: `parties` run before the first gateway records none, and run
// after it without the flags works; `reindex` does not choose them where
// none are recorded (Redis lost its data); a flag given (or CORRIDOR_*)
// must match.
func TestCommandsTakeTheGatewaysRedisSettings(t *testing.T) {
	url, prefix, data := testenv.RedisURL(t), testenv.Prefix(), t.TempDir()
	run := func(cmd []string, extra ...string) error {
		_, err := runCLI(t, append(append(cmd, "--data", data, "--redis-url", url, "--redis-prefix", prefix), extra...)...)
		return err
	}
	parties := func(extra ...string) error { return run([]string{"parties", "list"}, extra...) }
	reindex := []string{"reindex"}
	if err := parties(); err != nil {
		t.Fatal(err)
	}
	if err := run(reindex); err == nil || !strings.Contains(err.Error(), "--redis-dedupe-window") {
		t.Fatalf("reindex on a Redis with no settings recorded, given none: %v; want refused", err)
	}
	// A gateway with its own window and TTL starts after it.
	gw := storageFlags{Data: t.TempDir(), RedisURL: url, RedisPrefix: prefix, RedisDedupe: 10 * time.Minute, RedisRecordTTL: 2 * time.Hour}
	b, err := gw.open(context.Background())
	if err != nil {
		t.Fatalf("a gateway after `parties`: %v", err)
	}
	b.close()
	if err := parties(); err != nil {
		t.Fatalf("parties without the flags beside the gateway: %v", err)
	}
	if err := run(reindex); err != nil {
		t.Fatalf("reindex without the flags beside the gateway: %v", err)
	}
	if err := parties("--redis-record-ttl", "1h"); err == nil || !strings.Contains(err.Error(), "--redis-record-ttl") {
		t.Fatalf("parties given another TTL: %v; want refused", err)
	}
	t.Setenv("CORRIDOR_REDIS_RECORD_TTL", "3h")
	if err := parties(); err == nil || !strings.Contains(err.Error(), "--redis-record-ttl") {
		t.Fatalf("parties given another TTL by CORRIDOR_REDIS_RECORD_TTL: %v; want refused", err)
	}
}

// Gateways on one Redis sign with one receipt key: one started with
// another key file is refused (its receipts would not verify with the key
// the others publish); one given the first's key file starts.
func TestGatewaysShareTheReceiptKey(t *testing.T) {
	url, prefix, first := testenv.RedisURL(t), testenv.Prefix(), t.TempDir()
	gateway(t, storageFlags{Data: first, RedisURL: url, RedisPrefix: prefix})
	other := &Gateway{Storage: storageFlags{Data: t.TempDir(), RedisURL: url, RedisPrefix: prefix, VisibilityTimeout: time.Second},
		Listen: "127.0.0.1:0", BodyLimit: 1 << 20, RateLimit: 1000, MaxWait: time.Second, LogTo: io.Discard}
	err := other.Open(context.Background())
	other.Close()
	if err == nil || !strings.Contains(err.Error(), "--receipt-key") {
		t.Fatalf("a gateway with another receipt key: %v; want refused", err)
	}
	gateway(t, storageFlags{Data: t.TempDir(), RedisURL: url, RedisPrefix: prefix}, func(g *Gateway) { g.ReceiptKey = filepath.Join(first, "receipt.key") })
}

// `parties list` prints a name that is not printable text (stored before
// names were checked) quoted, so it cannot forge a line of the list.
func TestPrintableNames(t *testing.T) {
	for in, want := range map[string]string{
		"Bangkok Auto Import":            "Bangkok Auto Import",
		"曼谷汽车进口":                         "曼谷汽车进口",
		"Fake\nfake-party  Fake  [bank]": `"Fake\nfake-party  Fake  [bank]"`,
		"Bank \u202eknab":                `"Bank \u202eknab"`,
		"bad \xff":                       `"bad \xff"`,
	} {
		if got := shownName(in); got != want {
			t.Errorf("shownName(%q) = %s; want %s", in, got, want)
		}
	}
}

// --redis-compact-after: timelines leave Redis after it (left out or 0:
// never; under a minute, or without Redis, it is refused); a gateway on
// Redis reads the segments moved out whatever it says (another gateway
// may have compacted, or this one before the flag was turned off).
func TestRedisCompactAfterFlag(t *testing.T) {
	ctx := context.Background()
	m := testenv.MinIO(t)
	url, prefix := testenv.RedisURL(t), testenv.Prefix()
	open := func(args ...string) (*backends, error) {
		var f storageFlags
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		f.register(fs)
		if err := fs.Parse(append([]string{"--data", t.TempDir()}, args...)); err != nil {
			t.Fatal(err)
		}
		return f.open(ctx)
	}
	onRedis := []string{"--redis-url", url, "--redis-prefix", prefix}
	onS3 := append(slices.Clone(onRedis), "--s3-endpoint", m.Endpoint, "--s3-bucket", m.Bucket, "--s3-access-key", m.AccessKey, "--s3-secret-key", m.SecretKey)
	list := "ship:CF" + strings.ToUpper(prefix) + ":events"
	now := time.Now().UTC()
	var want []string
	for _, c := range []struct {
		args []string
		want time.Duration
	}{
		{append(slices.Clone(onS3), "--redis-compact-after", "1h"), time.Hour},
		{onS3, 0},
		{append(slices.Clone(onS3), "--redis-compact-after", "0"), 0},
		{append(slices.Clone(onRedis), "--redis-compact-after", "30m"), 30 * time.Minute}, // the embedded archive's blobs
	} {
		b, err := open(c.args...)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if got := b.redis.CompactAfter; got != c.want || b.redis.Segments == nil {
			b.close()
			t.Fatalf("%v: compacts after %s (segments %v); want %s, segments read", c.args, got, b.redis.Segments != nil, c.want)
		}
		if c.want == time.Hour { // a timeline moved out, read by the gateways after
			for i := range 3 {
				pos := exchange.Position(now.Add(-time.Duration(i+2)*time.Hour), exchange.DocumentID("carrier", "", []byte{byte(i)}))
				if err := b.index.Add(ctx, exchange.Record{}, []exchange.Entry{{List: list, Pos: pos}}); err != nil {
					t.Fatal(err)
				}
				want = append(want, pos)
			}
			if c, err := b.redis.Compact(ctx, now); err != nil || c.Moved != 3 {
				t.Fatalf("Compact = %+v, %v; want 3 moved", c, err)
			}
		} else if strings.Contains(strings.Join(c.args, " "), m.Endpoint) {
			items, err := b.index.Page(ctx, list, "", 10, false)
			if err != nil || len(items) != len(want) {
				t.Fatalf("%v: a gateway reads %d of the timeline's %d entries moved out (%v)", c.args, len(items), len(want), err)
			}
		}
		b.close()
	}
	for _, args := range [][]string{append(slices.Clone(onRedis), "--redis-compact-after", "30s"),
		append(slices.Clone(onRedis), "--redis-compact-after", "-1h"), {"--redis-compact-after", "1h"}} {
		if b, err := open(args...); err == nil || !strings.Contains(err.Error(), "--redis-compact-after") {
			if err == nil {
				b.close()
			}
			t.Fatalf("%v: %v; want refused", args, err)
		}
	}
}
