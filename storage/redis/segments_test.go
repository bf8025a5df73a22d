package redis_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/redis"
	"github.com/landsea/corridor/storage/s3"
	"github.com/landsea/corridor/storage/storagetest"
)

// minio opens blobs on the test MinIO.
func minio(t *testing.T) *s3.Store {
	t.Helper()
	env := testenv.MinIO(t)
	s := s3.New(env.Endpoint, env.Bucket, env.AccessKey, env.SecretKey)
	s.Prefix = testenv.Prefix() + "/"
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// compacting opens a store that moves its timelines' entries older than
// an hour into segments of at most size entries on blobs.
func compacting(t *testing.T, s *redis.Store, blobs exchange.Blobs, size int) *redis.Store {
	t.Helper()
	s.Segments, s.CompactAfter = blobs, time.Hour
	s.SetSegmentSize(size)
	return openOn(t, s, time.Minute)
}

// compactedIndex moves every entry it can out of Redis before each read:
// the Index cases then read lists from segments (and from both, for
// entries added again after they were moved out).
type compactedIndex struct {
	*redis.Store
	t *testing.T
}

func (c compactedIndex) compact(ctx context.Context) {
	if _, err := c.Compact(ctx, time.Now().Add(c.CompactAfter+time.Hour)); err != nil {
		c.t.Fatalf("Compact: %v", err)
	}
}

func (c compactedIndex) Page(ctx context.Context, list, after string, limit int, desc bool) ([]exchange.Item, error) {
	c.compact(ctx)
	return c.Store.Page(ctx, list, after, limit, desc)
}

func (c compactedIndex) Pages(ctx context.Context, qs ...exchange.PageQuery) ([][]exchange.Item, error) {
	c.compact(ctx)
	return c.Store.Pages(ctx, qs...)
}

func (c compactedIndex) Contains(ctx context.Context, list, pos string) (bool, error) {
	c.compact(ctx)
	return c.Store.Contains(ctx, list, pos)
}

// The index's cases hold with a shipment's events read from segments.
func TestConformanceCompacted(t *testing.T) {
	t.Run("Standalone", func(t *testing.T) {
		storagetest.Index(t, func(t *testing.T) exchange.Index {
			return compactedIndex{compacting(t, redis.New(testenv.RedisURL(t)), minio(t), 2), t}
		})
	})
	t.Run("Cluster", func(t *testing.T) {
		storagetest.Index(t, func(t *testing.T) exchange.Index {
			s := redis.New("")
			s.Cluster = testenv.RedisCluster(t)
			return compactedIndex{compacting(t, s, storagetest.Local(t), 2), t}
		})
	})
}

// timeline is a shipment's events list, filled by its test.
type timeline struct {
	t    *testing.T
	s    *redis.Store
	list string
	all  []string // every position, sorted
}

func newTimeline(t *testing.T, s *redis.Store) *timeline {
	return &timeline{t: t, s: s, list: "ship:" + strings.ToUpper(testenv.Prefix()) + ":events"}
}

// add files an event at, its record indexed or not (kept only in the
// archive); it returns its position.
func (tl *timeline) add(at time.Time, indexed bool) string {
	tl.t.Helper()
	id := exchange.DocumentID("carrier", "", []byte(fmt.Sprint(at.UnixNano(), rand.Int64())))
	pos := exchange.Position(at, id)
	rec := exchange.Record{Receipt: exchange.Receipt{ID: id, Type: "tracking-event", SchemaVersion: 1, Sender: "carrier",
		SHA256: fmt.Sprintf("%064x", len(tl.all)), ReceivedAt: at, Signature: "sig"}}
	if !indexed {
		rec.ID = exchange.DocumentID("unrelated", "", []byte(pos)) // the entry's own record is not in Redis
	}
	if err := tl.s.Add(context.Background(), rec, []exchange.Entry{{List: tl.list, Pos: pos}}); err != nil {
		tl.t.Fatal(err)
	}
	tl.all = append(tl.all, pos)
	slices.Sort(tl.all)
	tl.all = slices.Compact(tl.all)
	return pos
}

// check reads the whole list page by page, both ways and at several
// sizes, and finds it whole, in order, once each, with the records
// indexed; and Contains finds every entry.
func (tl *timeline) check(what string) {
	tl.t.Helper()
	ctx := context.Background()
	for _, desc := range []bool{false, true} {
		want := slices.Clone(tl.all)
		if desc {
			slices.Reverse(want)
		}
		for _, limit := range []int{1, 3, 7, 1000} {
			var got []string
			for after := ""; ; {
				items, err := tl.s.Page(ctx, tl.list, after, limit, desc)
				if err != nil {
					tl.t.Fatalf("%s: Page: %v", what, err)
				}
				for _, it := range items {
					if it.Record.ID != "" && it.Record.ID != exchange.PositionID(it.Pos) {
						tl.t.Fatalf("%s: position %s came with record %s", what, it.Pos, it.Record.ID)
					}
					got = append(got, it.Pos)
				}
				if len(items) < limit {
					break
				}
				after = items[len(items)-1].Pos
			}
			if !slices.Equal(got, want) {
				tl.t.Fatalf("%s: pages of %d (desc %v) read %d entries:\n%v\nwant %d:\n%v", what, limit, desc, len(got), got, len(want), want)
			}
		}
		// Two pages at once (Pages), from the middle.
		mid := want[len(want)/2]
		pages, err := tl.s.Pages(ctx, exchange.PageQuery{List: tl.list, After: mid, Limit: 5, Desc: desc},
			exchange.PageQuery{List: tl.list, Limit: 2, Desc: desc})
		if err != nil {
			tl.t.Fatal(err)
		}
		i := slices.Index(want, mid) + 1
		if got := positions(pages[0]); !slices.Equal(got, want[i:min(len(want), i+5)]) {
			tl.t.Fatalf("%s: Pages after the middle (desc %v) = %v; want %v", what, desc, got, want[i:min(len(want), i+5)])
		}
		if got := positions(pages[1]); !slices.Equal(got, want[:2]) {
			tl.t.Fatalf("%s: Pages from the start (desc %v) = %v; want %v", what, desc, got, want[:2])
		}
	}
	for _, p := range tl.all {
		if in, err := tl.s.Contains(ctx, tl.list, p); err != nil || !in {
			tl.t.Fatalf("%s: Contains(%s) = %v, %v", what, p, in, err)
		}
	}
	absent := exchange.Position(time.Now().Add(-90*time.Minute), "absent")
	if in, err := tl.s.Contains(ctx, tl.list, absent); err != nil || in {
		tl.t.Fatalf("%s: Contains of a position never filed = %v, %v", what, in, err)
	}
	// A cursor past the entries reads no segment's member as an entry.
	for _, after := range []string{"~", "~seg|", "~trash|z", "~~"} {
		for _, desc := range []bool{false, true} {
			items, err := tl.s.Page(ctx, tl.list, after, 1000, desc)
			if err != nil {
				tl.t.Fatal(err)
			}
			for _, it := range items {
				if strings.HasPrefix(it.Pos, "~") {
					tl.t.Fatalf("%s: Page after %q listed %q", what, after, it.Pos)
				}
			}
			if want := map[bool]int{false: 0, true: len(tl.all)}[desc]; len(items) != want {
				tl.t.Fatalf("%s: Page after %q (desc %v) listed %d entries; want %d", what, after, desc, len(items), want)
			}
		}
	}
}

func positions(items []exchange.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.Pos
	}
	return out
}

// inRedis returns the entries of the list still in Redis, and its members
// naming segments.
func (tl *timeline) inRedis() (entries, segs []string) {
	tl.t.Helper()
	ctx := context.Background()
	key := tl.s.ListKey(tl.list)
	entries, err := tl.s.Cmd().ZRangeArgs(ctx, goredis.ZRangeArgs{Key: key, ByLex: true, Start: "-", Stop: "(~"}).Result()
	if err != nil {
		tl.t.Fatal(err)
	}
	segs, err = tl.s.Cmd().ZRangeArgs(ctx, goredis.ZRangeArgs{Key: key, ByLex: true, Start: "[~seg|", Stop: "(~seg}"}).Result()
	if err != nil {
		tl.t.Fatal(err)
	}
	return entries, segs
}

// A timeline compacted step by step (entries late and early, some added
// again as reindex does, segments merged) reads as it did: every page,
// both ways, with its records; what is older than CompactAfter leaves
// Redis, and a list with nothing left leaves the compaction set.
func TestCompactedTimelineReadsTheSame(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) *redis.Store{
		"Standalone": func(t *testing.T) *redis.Store { return compacting(t, redis.New(testenv.RedisURL(t)), minio(t), 4) },
		"Cluster": func(t *testing.T) *redis.Store {
			s := redis.New("")
			s.Cluster = testenv.RedisCluster(t)
			return compacting(t, s, storagetest.Local(t), 4)
		},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t)
			tl := newTimeline(t, s)
			now := time.Now().UTC().Truncate(time.Microsecond)
			r := rand.New(rand.NewPCG(1, 2)) // the same times each run: a merge left out fails it every time
			for i := range 30 {              // over the last 30 hours, in no order
				tl.add(now.Add(-time.Duration(r.IntN(30*60))*time.Minute), i%3 != 0)
			}
			tl.check("before compaction")
			registered := func() bool {
				_, err := s.Cmd().ZScore(ctx, s.Prefix+":compact", tl.list).Result()
				if err != nil && !errors.Is(err, goredis.Nil) {
					t.Fatal(err)
				}
				return err == nil
			}
			if !registered() {
				t.Fatal("a timeline's entries did not put it in the compaction set")
			}
			for h := 30; h >= 0; h -= 6 { // the cutoff walks forward
				at := now.Add(-time.Duration(h) * time.Hour).Add(s.CompactAfter)
				cutoff := at.Add(-s.CompactAfter)
				if _, err := s.Compact(ctx, at); err != nil {
					t.Fatal(err)
				}
				entries, segs := tl.inRedis()
				var want []string
				for _, p := range tl.all {
					if !exchange.PositionTime(p).Before(cutoff) {
						want = append(want, p)
					}
				}
				if !slices.Equal(entries, want) {
					t.Fatalf("cutoff %dh ago: Redis keeps %d entries; want the %d not older than the cutoff", h, len(entries), len(want))
				}
				// Small segments are merged: at most one holds half a
				// segment or less.
				total, small := 0, 0
				for _, m := range segs {
					n, _ := strconv.Atoi(strings.Split(m, "|")[3])
					total += n
					if n <= 2 {
						small++
					}
				}
				if small > 1 || total < len(tl.all)-len(entries) {
					t.Fatalf("cutoff %dh ago: segments %v (%d entries, %d small) for %d entries moved", h, segs, total, small, len(tl.all)-len(entries))
				}
				tl.check(fmt.Sprintf("compacted to %dh ago", h))
				if h == 18 { // late entries, and entries moved out filed again (reindex)
					tl.add(now.Add(-29*time.Hour), true)
					tl.add(now.Add(-20*time.Hour), false)
					if err := s.Add(ctx, exchange.Record{}, []exchange.Entry{{List: tl.list, Pos: tl.all[0]}, {List: tl.list, Pos: tl.all[1]}}); err != nil {
						t.Fatal(err)
					}
					tl.check("entries added after compaction")
				}
			}
			if entries, _ := tl.inRedis(); len(entries) != 0 {
				t.Fatalf("compacted past every entry, %d stay in Redis", len(entries))
			}
			if registered() {
				t.Fatal("a timeline with every entry moved out is still in the compaction set")
			}
			tl.add(now.Add(-3*time.Hour), true)
			if !registered() {
				t.Fatal("an entry filed after its timeline was compacted did not put it back in the compaction set")
			}
			tl.check("a new entry beside segments")
		})
	}
}

// hookedBlobs calls onPut before each PutBlob, and remembers the names.
type hookedBlobs struct {
	exchange.Blobs
	onPut func()
	put   []string
}

func (h *hookedBlobs) PutBlob(ctx context.Context, name string, data []byte) error {
	h.put = append(h.put, name)
	if h.onPut != nil {
		h.onPut()
	}
	return h.Blobs.PutBlob(ctx, name, data)
}

// Two gateways compacting one timeline at once: the one that merges a
// segment the other merged first gives up and deletes what it wrote; the
// segment merged away is kept a while (a read may have just found it),
// then deleted by a later compaction, and the list leaves the compaction
// set with nothing left to do.
func TestCompactionBesideAnother(t *testing.T) {
	ctx := context.Background()
	blobs := minio(t)
	hooked := &hookedBlobs{Blobs: blobs}
	a := compacting(t, redis.New(testenv.RedisURL(t)), hooked, 4)
	b := compacting(t, redis.New(testenv.RedisURL(t)), blobs, 4)
	b.Prefix = a.Prefix
	tl := newTimeline(t, a)
	now := time.Now().UTC().Truncate(time.Microsecond)
	tl.add(now.Add(-5*time.Hour), true)
	tl.add(now.Add(-4*time.Hour), false)
	if _, err := a.Compact(ctx, now); err != nil {
		t.Fatal(err)
	}
	_, first := tl.inRedis()
	if len(first) != 1 {
		t.Fatalf("segments %v; want one", first)
	}
	tl.add(now.Add(-3*time.Hour), true)
	tl.add(now.Add(-2*time.Hour), true)
	hooked.put = nil
	hooked.onPut = func() {
		hooked.onPut = nil
		if c, err := b.Compact(ctx, now); err != nil || c.Moved != 2 || c.Segments != 1 {
			t.Errorf("the other gateway's Compact = %+v, %v; want 2 entries moved into a segment", c, err)
		}
	}
	c, err := a.Compact(ctx, now)
	if err != nil || c.Moved != 0 || c.Segments != 0 {
		t.Fatalf("Compact beside another = %+v, %v; want nothing moved (given up)", c, err)
	}
	if len(hooked.put) != 1 {
		t.Fatalf("wrote %v; want one segment", hooked.put)
	}
	if _, err := blobs.Blob(ctx, hooked.put[0]); !errors.Is(err, exchange.ErrNotFound) {
		t.Fatalf("the segment of the gateway that gave up is still there (%v)", err)
	}
	entries, segs := tl.inRedis()
	if len(entries) != 0 || len(segs) != 1 || !strings.Contains(segs[0], "|4|") {
		t.Fatalf("in Redis: entries %v, segments %v; want one segment of 4", entries, segs)
	}
	tl.check("compacted by two gateways")
	old := a.SegmentObject(tl.list, strings.Split(first[0], "|")[4])
	if _, err := blobs.Blob(ctx, old); err != nil {
		t.Fatalf("a segment merged away is deleted at once (%v): a read that just found it fails", err)
	}
	later := now.Add(10*time.Minute + time.Second)
	if c, err := a.Compact(ctx, later); err != nil || c.Deleted != 1 {
		t.Fatalf("Compact after the delay = %+v, %v; want the segment merged away deleted", c, err)
	}
	if _, err := blobs.Blob(ctx, old); !errors.Is(err, exchange.ErrNotFound) {
		t.Fatalf("a segment merged away stays after the delay (%v)", err)
	}
	tl.check("after the segment merged away was deleted")
	if n, err := a.Cmd().ZCard(ctx, a.Prefix+":compact").Result(); err != nil || n != 0 {
		t.Fatalf("the compaction set holds %d lists (%v); want none", n, err)
	}
}

// Gateways compacting on a timer (RunCompaction, one at a time) move a
// timeline's old entries out of Redis.
func TestRunCompaction(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	blobs := minio(t)
	a := compacting(t, redis.New(testenv.RedisURL(t)), blobs, 4)
	b := compacting(t, redis.New(testenv.RedisURL(t)), blobs, 4)
	b.Prefix = a.Prefix
	tl := newTimeline(t, a)
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := range 10 {
		tl.add(now.Add(-time.Duration(i+2)*time.Hour), i%2 == 0)
	}
	recent := tl.add(now.Add(-time.Minute), true)
	var mu sync.Mutex
	var runs []redis.Compaction
	report := func(c redis.Compaction, err error) {
		if err != nil {
			t.Errorf("compaction: %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		runs = append(runs, c)
	}
	var wg sync.WaitGroup
	for _, s := range []*redis.Store{a, b} {
		wg.Go(func() { s.RunCompaction(ctx, 20*time.Millisecond, report) })
	}
	testenv.Eventually(t, 10*time.Second, "old entries moved out", func() bool {
		entries, _ := tl.inRedis()
		return slices.Equal(entries, []string{recent})
	})
	cancel()
	wg.Wait()
	moved := 0
	for _, c := range runs {
		moved += c.Moved
	}
	if moved != 10 {
		t.Fatalf("runs %+v moved %d entries; want 10", runs, moved)
	}
	tl.check("compacted on a timer")
}

// A timeline compacted is small in Redis: its segments' members are short
// enough for a listpack (under 64 bytes), and a list that had grown past
// 128 entries (a skiplist, which Redis does not turn back when it shrinks)
// is written again as one.
func TestCompactedTimelineStaysCompactInRedis(t *testing.T) {
	ctx := context.Background()
	s := compacting(t, redis.New(testenv.RedisURL(t)), minio(t), 64)
	tl := newTimeline(t, s)
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := range 200 {
		tl.add(now.Add(-time.Duration(i+120)*time.Minute), i%2 == 0)
	}
	recent := tl.add(now.Add(-time.Minute), true)
	encoding := func() string {
		enc, err := s.Cmd().ObjectEncoding(ctx, s.ListKey(tl.list)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return enc
	}
	if enc := encoding(); enc != "skiplist" {
		t.Fatalf("a list of 201 entries is a %s; want a skiplist (else this test proves nothing)", enc)
	}
	if _, err := s.Compact(ctx, now); err != nil {
		t.Fatal(err)
	}
	entries, segs := tl.inRedis()
	if !slices.Equal(entries, []string{recent}) || len(segs) != 4 {
		t.Fatalf("compacted: entries %v, %d segments; want the recent one and 4", entries, len(segs))
	}
	for _, m := range segs {
		if len(m) >= 64 {
			t.Fatalf("segment member %q has %d bytes; want under 64", m, len(m))
		}
	}
	if enc := encoding(); enc != "listpack" {
		t.Fatalf("compacted, the list is a %s; want a listpack", enc)
	}
	tl.check("compacted from a skiplist")
}
