package exchange_test

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/local"
	"github.com/landsea/corridor/storage/storagetest"
)

// BenchmarkRedisMemory: what a tracking event costs Redis once every
// recipient has acked it. b.N events of the demo shipment go through the
// service (embedded archive, queue and index on Redis), every inbox is
// drained, then Redis' used_memory and each key class's MEMORY USAGE under
// the store's prefix are divided by b.N (-benchtime 5000x). RecordTTL:
// the same with --redis-record-ttl 1h, the events received two hours ago
// (their records are read from the archive). Both file every event in the
// demo shipment, whose lists grow past what Redis keeps compact (128
// entries, zset-max-listpack-entries). RecordTTLSpread: with the TTL, a new
// one bill every 100 events (a shipment of 100 events: the bills are
// counted among the documents). Compacted, CompactedSpread: the same as
// the two before, then the timelines moved out of Redis (Compact, with
// --redis-compact-after 1h: the demo's events happened weeks ago).
func BenchmarkRedisMemory(b *testing.B) {
	b.Run("RecordsKept", func(b *testing.B) { benchRedisMemory(b, 0, 0, false) })
	b.Run("RecordTTL", func(b *testing.B) { benchRedisMemory(b, time.Hour, 0, false) })
	b.Run("RecordTTLSpread", func(b *testing.B) { benchRedisMemory(b, time.Hour, 100, false) })
	b.Run("Compacted", func(b *testing.B) { benchRedisMemory(b, time.Hour, 0, true) })
	b.Run("CompactedSpread", func(b *testing.B) { benchRedisMemory(b, time.Hour, 100, true) })
}

// benchRedisMemory: per > 0 opens a shipment (a one bill) every per
// events; compact moves the timelines out before Redis is measured.
func benchRedisMemory(b *testing.B, ttl time.Duration, per int, compact bool) {
	ctx := context.Background()
	store := storagetest.Local(b, func(s *local.Store) { s.NoSync = true })
	r := openColdRedis(b, ttl)
	rc := goredis.NewClient(mustParseURL(b, testenv.RedisURL(b)))
	defer rc.Close()
	if compact {
		r.Segments, r.CompactAfter = store, time.Hour
	}
	svc, _ := benchDemo(b, store, r)
	svc.Queue = r
	if ttl > 0 {
		svc.Now = func() time.Time { return time.Now().Add(-2 * ttl) }
	}
	event, err := os.ReadFile(demoDir + "/documents/06-event-loaded-on-train.json")
	if err != nil {
		b.Fatal(err)
	}
	rail, err := store.Party(ctx, "cq-rail")
	if err != nil {
		b.Fatal(err)
	}
	mto, err := store.Party(ctx, "cq-mto")
	if err != nil {
		b.Fatal(err)
	}
	billDoc, err := os.ReadFile(demoDir + "/documents/01-one-bill.json")
	if err != nil {
		b.Fatal(err)
	}
	const demoRef = "CQNL2026000187"
	ref := demoRef
	before := usedMemory(b, rc)
	var recipients []string
	i := 0
	for b.Loop() {
		i++
		if per > 0 && (i-1)%per == 0 {
			ref = fmt.Sprintf("CQNL%010d", 3000000000+i)
			bill := strings.Replace(string(billDoc), demoRef, ref, 1)
			rc, _, err := svc.Submit(ctx, mto, exchange.Submission{Type: "one-bill", Body: []byte(bill)})
			if err != nil {
				b.Fatal(err)
			}
			recipients = append(recipients, rc.Recipients...)
		}
		body := strings.Replace(string(event), "cqrail-load-CSQU3054383-20261106", fmt.Sprintf("mem-%09d", i), 1)
		body = strings.Replace(body, demoRef, ref, 1)
		rcpt, _, err := svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: []byte(body)})
		if err != nil {
			b.Fatal(err)
		}
		recipients = append(recipients, rcpt.Recipients...)
		slices.Sort(recipients)
		recipients = slices.Compact(recipients)
	}
	b.StopTimer()
	for _, p := range recipients { // every inbox drained
		for {
			msgs, err := svc.Pull(ctx, exchange.Party{ID: p}, 100, 0)
			if err != nil {
				b.Fatal(err)
			}
			if len(msgs) == 0 {
				break
			}
			ids := make([]string, len(msgs))
			for j, m := range msgs {
				ids[j] = m.ID
			}
			if _, err := svc.Ack(ctx, exchange.Party{ID: p}, ids); err != nil {
				b.Fatal(err)
			}
		}
	}
	if compact {
		if _, err := r.Compact(ctx, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(usedMemory(b, rc)-before)/n, "used_memory-B/doc")
	classes := map[string]int64{}
	iter := rc.Scan(ctx, 0, r.Prefix+":*", 1000).Iterator()
	class := regexp.MustCompile(`^[^:]*:(?:\{[^}]*\}:)?([a-z]+)`)
	for iter.Next(ctx) {
		k := iter.Val()
		bytes, err := rc.MemoryUsage(ctx, k).Result()
		if err != nil {
			b.Fatal(err)
		}
		m := class.FindStringSubmatch(k)
		if m == nil {
			b.Fatalf("key %q", k)
		}
		classes[m[1]] += bytes
	}
	if err := iter.Err(); err != nil {
		b.Fatal(err)
	}
	names := make([]string, 0, len(classes))
	for c := range classes {
		names = append(names, c)
	}
	slices.Sort(names)
	for _, c := range names {
		b.ReportMetric(float64(classes[c])/n, c+"-B/doc")
	}
}

func mustParseURL(tb testing.TB, url string) *goredis.Options {
	tb.Helper()
	o, err := goredis.ParseURL(url)
	if err != nil {
		tb.Fatal(err)
	}
	return o
}

func usedMemory(tb testing.TB, rc *goredis.Client) int64 {
	tb.Helper()
	info, err := rc.Info(context.Background(), "memory").Result()
	if err != nil {
		tb.Fatal(err)
	}
	m := regexp.MustCompile(`used_memory:(\d+)`).FindStringSubmatch(info)
	if m == nil {
		tb.Fatalf("no used_memory in INFO memory: %q", info)
	}
	v, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}
