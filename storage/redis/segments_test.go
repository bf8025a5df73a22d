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
			return compactedIndex{compacting(t, redis.New(testenv.RedisURL(t)), storagetest.MinIO(t), 2), t}
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
		if got := positions(pages[1]); !slices.Equal(got, want[:min(2, len(want))]) {
			tl.t.Fatalf("%s: Pages from the start (desc %v) = %v; want %v", what, desc, got, want[:min(2, len(want))])
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
		"Standalone": func(t *testing.T) *redis.Store {
			return compacting(t, redis.New(testenv.RedisURL(t)), storagetest.MinIO(t), 4)
		},
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
	blobs := storagetest.MinIO(t)
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
	old := a.SegmentObjectOf(tl.list, first[0])
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
	blobs := storagetest.MinIO(t)
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
	s := compacting(t, redis.New(testenv.RedisURL(t)), storagetest.MinIO(t), 64)
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

// replayMove sends the first pipeline carrying a move script twice, as
// go-redis does when the reply of a pipeline Redis ran is lost (a read
// time-out, a connection reset).
type replayMove struct{ done bool }

func (h *replayMove) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (h *replayMove) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }
func (h *replayMove) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if !h.done && slices.ContainsFunc(cmds, func(c goredis.Cmder) bool {
			return (c.Name() == "evalsha" || c.Name() == "eval") && slices.ContainsFunc(c.Args(), func(a any) bool {
				s, _ := a.(string)
				return strings.HasPrefix(s, "~seg|")
			})
		}) {
			h.done = true
			if err := next(ctx, cmds); err != nil { // the run whose reply was lost
				return err
			}
		}
		return next(ctx, cmds)
	}
}

// A move run twice (its reply lost, go-redis sends it again) keeps the
// segment it swapped in: the second run finds its own member and answers
// as the first did, and nothing is undone. (Review: the second found the
// segments it merged gone, and the gateway deleted the live segment.)
func TestCompactionMoveRunTwice(t *testing.T) {
	ctx := context.Background()
	blobs := storagetest.MinIO(t)
	s := compacting(t, redis.New(testenv.RedisURL(t)), blobs, 4)
	tl := newTimeline(t, s)
	now := time.Now().UTC().Truncate(time.Microsecond)
	tl.add(now.Add(-5*time.Hour), true)
	tl.add(now.Add(-4*time.Hour), true)
	if _, err := s.Compact(ctx, now); err != nil { // a small segment
		t.Fatal(err)
	}
	tl.add(now.Add(-3*time.Hour), true)
	tl.add(now.Add(-2*time.Hour), true)
	h := &replayMove{}
	s.AddHook(h)
	c, err := s.Compact(ctx, now) // merges the small one
	if !h.done {
		t.Fatal("no move script was sent (the test proves nothing)")
	}
	if err != nil || c.Moved != 2 || c.Segments != 1 {
		t.Fatalf("Compact with its move run twice = %+v, %v; want 2 moved into 1 segment", c, err)
	}
	_, segs := tl.inRedis()
	for _, m := range segs {
		if _, err := blobs.Blob(ctx, s.SegmentObjectOf(tl.list, m)); err != nil {
			t.Fatalf("the list names segment %s, whose object is gone: %v", m, err)
		}
	}
	tl.check("after a move run twice")
}

// A list naming a segment the archive lost (Redis restored from an older
// copy, an object deleted) fails its visits without holding up the lists
// due after it, and reads again once reindex has run (RepairSegments,
// then every entry filed again).
func TestCompactionPastALostSegment(t *testing.T) {
	ctx := context.Background()
	blobs := storagetest.MinIO(t)
	s := compacting(t, redis.New(testenv.RedisURL(t)), blobs, 4)
	now := time.Now().UTC().Truncate(time.Microsecond)
	broken := newTimeline(t, s)
	broken.add(now.Add(-6*time.Hour), true)
	if _, err := s.Compact(ctx, now); err != nil {
		t.Fatal(err)
	}
	_, segs := broken.inRedis()
	if len(segs) != 1 {
		t.Fatalf("segments %v; want one", segs)
	}
	if err := blobs.DeleteBlob(ctx, s.SegmentObjectOf(broken.list, segs[0])); err != nil {
		t.Fatal(err)
	}
	broken.add(now.Add(-5*time.Hour), true) // due again, before the other
	other := newTimeline(t, s)
	other.add(now.Add(-4*time.Hour), true)
	c, err := s.Compact(ctx, now)
	if err == nil || c.Failed != 1 || c.Moved != 1 {
		t.Fatalf("Compact past a lost segment = %+v, %v; want the other list's entry moved, one failure reported", c, err)
	}
	if entries, _ := other.inRedis(); len(entries) != 0 {
		t.Fatalf("a list due after a broken one keeps its old entries in Redis: %v", entries)
	}
	if _, err := s.Page(ctx, broken.list, "", 10, false); err == nil {
		t.Fatal("a list naming a lost segment reads, missing its entries")
	}
	if c, err := s.Compact(ctx, now); err != nil || c.Lists != 0 {
		t.Fatalf("Compact again at once = %+v, %v; want the broken list left for later", c, err)
	}
	n, err := s.RepairSegments(ctx)
	if err != nil || n != 1 {
		t.Fatalf("RepairSegments = %d, %v; want the lost one dropped", n, err)
	}
	for _, p := range broken.all { // reindex
		if err := s.Add(ctx, exchange.Record{}, []exchange.Entry{{List: broken.list, Pos: p}}); err != nil {
			t.Fatal(err)
		}
	}
	broken.check("repaired and reindexed")
	other.check("the other list")
}

// Segments that overlap (late events between runs, entries filed again,
// two gateways of different segment sizes compacting in turn) read whole;
// entries filed again that a segment holds leave Redis without being
// written again. (From review.)
func TestCompactionOverlappingSegments(t *testing.T) {
	ctx := context.Background()
	blobs := &hookedBlobs{Blobs: storagetest.MinIO(t)}
	a := compacting(t, redis.New(testenv.RedisURL(t)), blobs, 3)
	b := compacting(t, redis.New(testenv.RedisURL(t)), blobs, 5)
	b.Prefix = a.Prefix
	tl := newTimeline(t, a)
	now := time.Now().UTC().Truncate(time.Microsecond)
	r := rand.New(rand.NewPCG(9, 9))
	for round := range 8 {
		for range 6 {
			tl.add(now.Add(-time.Duration(r.IntN(40*60))*time.Minute), r.IntN(2) == 0)
		}
		if round%3 == 2 {
			var again []exchange.Entry
			for range 3 {
				again = append(again, exchange.Entry{List: tl.list, Pos: tl.all[r.IntN(len(tl.all))]})
			}
			if err := a.Add(ctx, exchange.Record{}, again); err != nil {
				t.Fatal(err)
			}
		}
		s := map[bool]*redis.Store{false: a, true: b}[round%2 == 1]
		if _, err := s.Compact(ctx, now.Add(-time.Duration(40-round*5)*time.Hour).Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		tl.check(fmt.Sprintf("round %d", round))
	}
	if _, err := a.Compact(ctx, now.Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}
	tl.check("all moved out")
	// Reindex files every entry again: they leave Redis, no segment written.
	var again []exchange.Entry
	for _, p := range tl.all {
		again = append(again, exchange.Entry{List: tl.list, Pos: p})
	}
	if err := a.Add(ctx, exchange.Record{}, again); err != nil {
		t.Fatal(err)
	}
	blobs.put = nil
	c, err := a.Compact(ctx, now.Add(48*time.Hour))
	if err != nil || c.Moved != len(tl.all) || c.Segments != 0 || len(blobs.put) != 0 {
		t.Fatalf("Compact of entries filed again = %+v, %v (wrote %v); want all %d out of Redis, no segment written", c, err, blobs.put, len(tl.all))
	}
	if entries, _ := tl.inRedis(); len(entries) != 0 {
		t.Fatalf("%d entries filed again stay in Redis", len(entries))
	}
	tl.check("entries filed again, moved out")
}

// With MinIO hung, a read that needs a segment, Contains and a
// compaction fail as unavailable (503), not as internal errors, and the
// entries stay. (From review.)
func TestCompactionWithMinIOHung(t *testing.T) {
	ctx := context.Background()
	m := testenv.StartMinIO(t)
	blobs := s3.New(m.Endpoint, m.Bucket, m.AccessKey, m.SecretKey)
	if err := blobs.Open(ctx); err != nil {
		t.Fatal(err)
	}
	a := compacting(t, redis.New(testenv.RedisURL(t)), blobs, 4)
	tl := newTimeline(t, a)
	now := time.Now().UTC().Truncate(time.Microsecond)
	tl.add(now.Add(-5*time.Hour), true)
	tl.add(now.Add(-4*time.Hour), true)
	if _, err := a.Compact(ctx, now); err != nil {
		t.Fatal(err)
	}
	cold := compacting(t, redis.New(testenv.RedisURL(t)), blobs, 4) // no segment cached
	cold.Prefix = a.Prefix
	tl.add(now.Add(-3*time.Hour), true)
	m.Pause(t)
	defer m.Resume(t)
	for name, call := range map[string]func(context.Context) error{
		"Page":     func(ctx context.Context) error { _, err := cold.Page(ctx, tl.list, "", 10, false); return err },
		"Contains": func(ctx context.Context) error { _, err := cold.Contains(ctx, tl.list, tl.all[0]); return err },
		"Compact":  func(ctx context.Context) error { _, err := cold.Compact(ctx, now); return err },
	} {
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := call(short); !errors.Is(err, exchange.ErrUnavailable) {
			t.Errorf("%s with MinIO hung: %v; want ErrUnavailable", name, err)
		}
		cancel()
	}
	m.Resume(t)
	if entries, _ := tl.inRedis(); len(entries) != 1 {
		t.Fatalf("entries in Redis after a compaction that failed: %v; want the one", entries)
	}
	tl.check("after MinIO came back")
}
