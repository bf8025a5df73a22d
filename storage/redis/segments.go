package redis

// Segments: the older entries of the longest lists (a shipment's events,
// exchange.Compactable) leave Redis for immutable objects beside the
// archive (Store.Segments), so that what a document costs Redis for good
// is not its entry in its shipment's timeline.
//
// A list's sorted set holds, beside its entries (positions: 16 hex digits
// and an id), members that sort after every position ("~" is above any
// hex digit):
//
//	~seg|<from>|<to>|<count>|<id>      a segment: entries moved out
//	~trash|<unix ms, 16 digits>|<id>   a segment merged away, to delete then
//
// where from and to are the times of its first and last entries (the 16
// hex digits of their positions) and id names its object (segmentObject):
// under 64 bytes, so a list of up to 128 members stays a listpack in
// Redis (zset-max-listpack-value), and so that one script on the list's key (one hash slot) moves entries out:
// it adds the new segment's member, drops the entries and the members of
// the segments merged into it, and notes those to delete. A gateway that
// dies before the script leaves an object nothing names (never read);
// after it, the list is whole. Reads merge the entries left with the
// segments reaching their range (an entry in both, as after reindex, is
// read once). A segment merged away is deleted only a while later, by the
// compaction visiting its list again: a read that found its member just
// before has long finished by then.
//
// The lists to visit are in a sorted set (compactKey) scored by the time
// (Unix µs) of their oldest entry, or of their next deletion less
// CompactAfter; Add keeps it (ZADD LT), so Compact finds what is due with
// one range, without scanning the keys.

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/exchange"
)

const (
	// entriesHi ends every range of a list's entries (before its segments).
	entriesHi = "(~"
	segLo     = "[~seg|"
	segHi     = "(~seg}"
	trashLo   = "[~trash|"
	trashHi   = "(~trash}"
	// segmentMax is the most entries a segment holds: ~200 KB (a read
	// beyond the entries left in Redis costs one object, then is cached).
	// It also bounds the entries one visit moves: a list with more stays
	// due, and is visited again in the same run.
	segmentMax = 4096
	// trashAfter is how long a segment merged away stays readable.
	trashAfter = 10 * time.Minute
	// dedupeReach is the most segments a visit reads to find entries
	// moved out before (moveOut).
	dedupeReach = 8
	// compactLock bounds how long a gateway that died compacting keeps
	// the others from it (a run longer than that may meet another: they
	// move the same entries twice, read once).
	compactLock = time.Minute
	// segmentMagic starts a segment object; its positions follow, one a line.
	segmentMagic = "corridor-segment 1\n"
)

// errSegmentMissing: a list names a segment the archive does not hold
// (Redis restored from an older copy, objects deleted by hand):
// RepairSegments, which `corridor reindex` runs, drops its member, and
// reindex files its entries again.
var errSegmentMissing = errors.New("missing from the archive (corridor reindex files its entries again)")

// segment is a list's entries moved out, as its member names it.
type segment struct {
	from, to string // the times of its first and last entries (16 hex digits)
	count    int
	id       string // its object's own part of the name
	object   string // segmentObject
}

func (g segment) member() string {
	return "~seg|" + g.from + "|" + g.to + "|" + strconv.Itoa(g.count) + "|" + g.id
}

// lo sorts before every entry of the segment, hi after every one.
func (g segment) lo() string { return g.from }
func (g segment) hi() string { return g.to + "~" }

func (s *Store) parseSegment(list, m string) (segment, bool) {
	f := strings.Split(strings.TrimPrefix(m, "~seg|"), "|")
	if len(f) != 4 || len(f[0]) != 16 || len(f[1]) != 16 || f[0] > f[1] || !exchange.BlobName(f[3]) {
		return segment{}, false
	}
	n, err := strconv.Atoi(f[2])
	return segment{from: f[0], to: f[1], count: n, id: f[3], object: s.segmentObject(list, f[3])}, err == nil
}

func trashMember(at time.Time, id string) string {
	return fmt.Sprintf("~trash|%016d|%s", at.UnixMilli(), id)
}

func parseTrash(m string) (at time.Time, id string, ok bool) {
	ms, id, ok := strings.Cut(strings.TrimPrefix(m, "~trash|"), "|")
	n, err := strconv.ParseInt(ms, 10, 64)
	return time.UnixMilli(n), id, ok && err == nil && exchange.BlobName(id)
}

func encodeSegment(pos []string) []byte {
	return []byte(segmentMagic + strings.Join(pos, "\n"))
}

func decodeSegment(data []byte) ([]string, error) {
	rest, ok := strings.CutPrefix(string(data), segmentMagic)
	if !ok {
		return nil, errors.New("not a segment")
	}
	if rest == "" {
		return []string{}, nil
	}
	pos := strings.Split(rest, "\n")
	if !slices.IsSorted(pos) {
		return nil, errors.New("segment not sorted")
	}
	return pos, nil
}

// segmentMax is segmentMax, or the store's own (tests).
func (s *Store) segmentMax() int {
	if s.segmentSize > 0 {
		return s.segmentSize
	}
	return segmentMax
}

// compacting reports whether this store moves list's older entries out.
func (s *Store) compacting(list string) bool {
	return s.Segments != nil && exchange.Compactable(list)
}

func (s *Store) compactKey() string { return s.Prefix + ":compact" }

// segmentArgs reads every segment member of a list.
func (s *Store) segmentArgs(list string) goredis.ZRangeArgs {
	return goredis.ZRangeArgs{Key: s.listKey(list), Start: segLo, Stop: segHi, ByLex: true}
}

func (s *Store) parseSegments(list string, members []string) ([]segment, error) {
	out := make([]segment, 0, len(members))
	for _, m := range members {
		g, ok := s.parseSegment(list, m)
		if !ok {
			return nil, fmt.Errorf("redis: a list's segment %q does not read", m)
		}
		out = append(out, g)
	}
	return out, nil
}

// segment reads a segment's positions for a view (cached: a segment
// never changes).
func (s *Store) segment(ctx context.Context, g segment) ([]string, error) {
	return s.readSegment(ctx, g, true)
}

// readSegment reads a segment's positions, from the cache if it holds it,
// keeping what it read there when keep (compaction, which reads a segment
// to merge it away, does not).
func (s *Store) readSegment(ctx context.Context, g segment, keep bool) ([]string, error) {
	if pos, ok := s.segs.Get(g.object); ok {
		return pos, nil
	}
	data, err := s.Segments.Blob(ctx, g.object)
	if errors.Is(err, exchange.ErrNotFound) {
		return nil, fmt.Errorf("redis: segment %s: %w", g.object, errSegmentMissing)
	} else if err != nil {
		return nil, err
	}
	pos, err := decodeSegment(data)
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", g.object, err)
	}
	if keep {
		s.segs.Add(g.object, pos)
	}
	return pos, nil
}

// withSegments merges a page read from Redis (got: up to q.Limit
// positions after q.After, in q's order) with a list's segments: the
// first q.Limit positions of both, once each.
func (s *Store) withSegments(ctx context.Context, q exchange.PageQuery, got []string, segs []segment) ([]string, error) {
	before := func(a, b string) bool { return a < b }
	if q.Desc {
		before = func(a, b string) bool { return a > b }
		slices.SortFunc(segs, func(a, b segment) int { return strings.Compare(b.to, a.to) })
	} else {
		slices.SortFunc(segs, func(a, b segment) int { return strings.Compare(a.from, b.from) })
	}
	out := got
	for _, g := range segs {
		near, far := g.lo(), g.hi() // bounds of the ends the page meets first and last
		if q.Desc {
			near, far = g.hi(), g.lo()
		}
		if q.After != "" && !before(q.After, far) {
			continue // wholly at or before the page's start
		}
		if len(out) >= q.Limit && before(out[q.Limit-1], near) {
			break // this segment, and every one after it, starts past the page
		}
		pos, err := s.segment(ctx, g)
		if err != nil {
			return nil, err
		}
		var take []string
		if q.Desc {
			j := len(pos)
			if q.After != "" {
				j, _ = slices.BinarySearch(pos, q.After)
			}
			take = slices.Clone(pos[max(0, j-q.Limit):j])
			slices.Reverse(take)
		} else {
			i := 0
			if q.After != "" {
				i, _ = slices.BinarySearch(pos, q.After)
				if i < len(pos) && pos[i] == q.After {
					i++
				}
			}
			take = pos[i:min(len(pos), i+q.Limit)]
		}
		out = slices.Concat(out, take)
		slices.SortFunc(out, func(a, b string) int {
			if q.Desc {
				return strings.Compare(b, a)
			}
			return strings.Compare(a, b)
		})
		out = slices.Compact(out)
		out = out[:min(len(out), q.Limit)]
	}
	return out, nil
}

// inSegments reports whether a segment of list holds pos.
func (s *Store) inSegments(ctx context.Context, list, pos string) (bool, error) {
	members, err := s.cmd.ZRangeArgs(ctx, s.segmentArgs(list)).Result()
	if err != nil {
		return false, wrap(err)
	}
	segs, err := s.parseSegments(list, members)
	if err != nil {
		return false, err
	}
	for _, g := range segs {
		if pos < g.lo() || pos > g.hi() {
			continue
		}
		all, err := s.segment(ctx, g)
		if err != nil {
			return false, err
		}
		if _, ok := slices.BinarySearch(all, pos); ok {
			return true, nil
		}
	}
	return false, nil
}

// moveScript moves entries into segments, on one list (KEYS[1]). ARGV:
// the counts of new segment members, of old ones (merged away), and of
// trash members; then those members, then the entries. Old members all
// still there, it adds the new, drops the old and the entries and adds
// the trash; a list left with few members is written again, so that
// Redis keeps it compact (a sorted set grown past 128 members, or a
// member of over 64 bytes, is a skiplist, and stays one when it shrinks);
// and it returns {1, the first entry left or "", the first trash
// member or ""}; else (another gateway merged them meanwhile) nothing,
// and {0}. Run again (go-redis sends a pipeline again when its reply was
// lost, though Redis ran it), it finds its own new member (ids are
// random) and answers {1, ...} again.
var moveScript = goredis.NewScript(`
local function left()
  local first = redis.call('ZRANGE', KEYS[1], '-', '(~', 'BYLEX', 'LIMIT', 0, 1)
  local trash = redis.call('ZRANGE', KEYS[1], '[~trash|', '(~trash}', 'BYLEX', 'LIMIT', 0, 1)
  return {'1', first[1] or '', trash[1] or ''}
end
local nn, no, nt = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if nn > 0 and redis.call('ZSCORE', KEYS[1], ARGV[4]) then return left() end
local o = 4 + nn
for k = o, o + no - 1 do
  if not redis.call('ZSCORE', KEYS[1], ARGV[k]) then return {'0'} end
end
for k = 4, o - 1 do redis.call('ZADD', KEYS[1], 0, ARGV[k]) end
for k = o, o + no - 1 do redis.call('ZREM', KEYS[1], ARGV[k]) end
for k = o + no, o + no + nt - 1 do redis.call('ZADD', KEYS[1], 0, ARGV[k]) end
for k = o + no + nt, #ARGV, 1000 do
  redis.call('ZREM', KEYS[1], unpack(ARGV, k, math.min(k + 999, #ARGV)))
end
if redis.call('OBJECT', 'ENCODING', KEYS[1]) == 'skiplist' and redis.call('ZCARD', KEYS[1]) <= 64 then
  local all = redis.call('ZRANGE', KEYS[1], 0, -1)
  local add = {}
  for _, m in ipairs(all) do add[#add + 1] = 0; add[#add + 1] = m end
  redis.call('DEL', KEYS[1])
  redis.call('ZADD', KEYS[1], unpack(add))
end
return left()`)

// rescheduleScript sets a list's score in the compaction set (KEYS[1])
// to ARGV[2], or removes it when ARGV[2] is "", if it is still ARGV[1]
// (an entry added since may have lowered it). It returns 1 when it
// removed the list.
var rescheduleScript = goredis.NewScript(`
local cur = redis.call('ZSCORE', KEYS[1], ARGV[3])
if not cur or tonumber(cur) ~= tonumber(ARGV[1]) then return 0 end
if ARGV[2] == '' then redis.call('ZREM', KEYS[1], ARGV[3]) return 1 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
return 0`)

// Compaction is what one Compact did.
type Compaction struct {
	Lists    int // visited
	Moved    int // entries moved out of Redis
	Segments int // segments written
	Deleted  int // segments merged away, deleted
	Failed   int // lists whose visit failed (put back for CompactAfter)
}

// Compact moves the entries older than CompactAfter of every list due out
// of Redis, into segments (see the top of this file). Several gateways may
// run it at once: a merge that another gateway's got ahead of is given up.
// A list whose visit fails (a segment missing: see RepairSegments) is put
// back for CompactAfter and the others go on; a backend unavailable ends
// the run.
func (s *Store) Compact(ctx context.Context, now time.Time) (Compaction, error) {
	var done Compaction
	if s.Segments == nil || s.CompactAfter <= 0 {
		return done, nil
	}
	cutoff := now.Add(-s.CompactAfter)
	var errs []error
	for range 16 { // batches; a list still due after its visit is visited again
		due, err := s.cmd.ZRangeArgsWithScores(ctx, goredis.ZRangeArgs{Key: s.compactKey(), ByScore: true,
			Start: "-inf", Stop: strconv.FormatInt(cutoff.UnixMicro(), 10), Count: 256}).Result()
		if err != nil {
			return done, wrap(err)
		}
		progress := false
		for _, z := range due {
			list, _ := z.Member.(string)
			n, err := s.compactList(ctx, list, z.Score, cutoff, now)
			done.Lists++
			done.Moved += n.Moved
			done.Segments += n.Segments
			done.Deleted += n.Deleted
			if err != nil {
				errs = append(errs, fmt.Errorf("compact %s: %w", list, err))
				if errors.Is(err, exchange.ErrUnavailable) || ctx.Err() != nil {
					return done, errors.Join(errs...)
				}
				done.Failed++
				if err := s.reschedule(ctx, list, z.Score, strconv.FormatInt(now.UnixMicro(), 10)); err != nil {
					return done, errors.Join(append(errs, err)...)
				}
				continue
			}
			progress = progress || n.Moved > 0 || n.Deleted > 0
		}
		if len(due) == 0 || !progress {
			break
		}
	}
	return done, errors.Join(errs...)
}

// compactList visits one list: deletes its segments merged away a while
// ago, moves its entries older than cutoff into a segment (merged with
// its small ones), and sets when it is due again.
func (s *Store) compactList(ctx context.Context, list string, score float64, cutoff, now time.Time) (Compaction, error) {
	var done Compaction
	key := s.listKey(list)
	var old, segMembers, trash *goredis.StringSliceCmd
	if _, err := s.cmd.Pipelined(ctx, func(p goredis.Pipeliner) error {
		old = p.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: key, ByLex: true, Start: "-",
			Stop: "(" + exchange.Position(cutoff, ""), Count: int64(s.segmentMax())})
		segMembers = p.ZRangeArgs(ctx, s.segmentArgs(list))
		trash = p.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: key, ByLex: true, Start: trashLo, Stop: trashHi})
		return nil
	}); err != nil {
		return done, wrap(err)
	}
	var deleted []any
	for _, m := range trash.Val() {
		at, id, ok := parseTrash(m)
		if ok && at.After(now) {
			continue
		}
		if ok {
			if err := s.Segments.DeleteBlob(ctx, s.segmentObject(list, id)); err != nil {
				return done, err
			}
		}
		deleted = append(deleted, m)
	}
	if len(deleted) > 0 {
		if err := s.write(ctx, step{key, func(p goredis.Pipeliner, _ evalFunc) { p.ZRem(ctx, key, deleted...) }}); err != nil {
			return done, err
		}
		done.Deleted = len(deleted)
	}
	entries := old.Val()
	if len(entries) == 0 {
		due, err := s.dueNow(ctx, list)
		if err != nil {
			return done, err
		}
		return done, s.reschedule(ctx, list, score, due)
	}
	segs, err := s.parseSegments(list, segMembers.Val())
	if err != nil {
		return done, err
	}
	moved, made, first, nextTrash, err := s.moveOut(ctx, list, entries, segs, now)
	if err != nil || !moved {
		return done, err // given up: another gateway merged these segments; it reschedules
	}
	done.Moved, done.Segments = len(entries), made
	return done, s.reschedule(ctx, list, score, s.dueAt(first, nextTrash))
}

// dueNow is a list's score in the compaction set as the list is now
// (dueAt of its first entry and first trash member).
func (s *Store) dueNow(ctx context.Context, list string) (string, error) {
	key := s.listKey(list)
	var left, trash *goredis.StringSliceCmd
	if _, err := s.cmd.Pipelined(ctx, func(p goredis.Pipeliner) error {
		left = p.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: key, ByLex: true, Start: "-", Stop: entriesHi, Count: 1})
		trash = p.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: key, ByLex: true, Start: trashLo, Stop: trashHi, Count: 1})
		return nil
	}); err != nil {
		return "", wrap(err)
	}
	return s.dueAt(firstOf(left.Val()), firstOf(trash.Val())), nil
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// dueAt is a list's score in the compaction set: the time of its first
// entry, or of its first trash less CompactAfter, whichever is earlier;
// "" when it has neither.
func (s *Store) dueAt(first, trash string) string {
	var at []int64
	if len(first) >= 16 {
		if us, err := strconv.ParseInt(first[:16], 16, 64); err == nil {
			at = append(at, us)
		}
	}
	if t, _, ok := parseTrash(trash); ok {
		at = append(at, t.Add(-s.CompactAfter).UnixMicro())
	}
	if len(at) == 0 {
		return ""
	}
	return strconv.FormatInt(slices.Min(at), 10)
}

// reschedule sets a list's score in the compaction set to due ("":
// nothing left to do), unless an entry added since changed it. A list
// removed is looked at once more, for an entry added meanwhile (Add files
// the entry before it sets the score, on one connection; on a Cluster the
// two may cross, and such an entry waits in Redis for the list's next).
func (s *Store) reschedule(ctx context.Context, list string, score float64, due string) error {
	reg := s.compactKey()
	old := strconv.FormatFloat(score, 'f', -1, 64)
	var res *goredis.Cmd
	if err := s.write(ctx, step{reg, func(p goredis.Pipeliner, eval evalFunc) {
		res = eval(rescheduleScript, ctx, p, []string{reg}, old, due, list)
	}}); err != nil {
		return err
	}
	if removed, _ := res.Int(); removed != 1 {
		return nil
	}
	due, err := s.dueNow(ctx, list)
	if err != nil {
		return err
	}
	if due != "" {
		us, _ := strconv.ParseFloat(due, 64)
		return s.write(ctx, step{reg, func(p goredis.Pipeliner, _ evalFunc) {
			p.ZAddLT(ctx, reg, goredis.Z{Score: us, Member: list})
		}})
	}
	return nil
}

// moveOut writes entries, merged with the list's smaller segments, as
// new segments, then swaps them in (moveScript). moved is false when
// another gateway merged those segments first (the objects written are
// deleted).
func (s *Store) moveOut(ctx context.Context, list string, entries []string, segs []segment, now time.Time) (moved bool, made int, first, trash string, err error) {
	// Entries a segment holds already (filed again by reindex) only leave
	// Redis. New entries are newer than every segment: none is read for
	// them. Where more than a few segments reach the entries (events of
	// one time, interleaved by id), none is read: a duplicate written
	// again is read once all the same.
	fresh := entries
	reach := slices.DeleteFunc(slices.Clone(segs), func(g segment) bool {
		return g.hi() < entries[0] || g.lo() > entries[len(entries)-1]
	})
	if len(reach) > dedupeReach {
		reach = nil
	}
	for _, g := range reach {
		pos, err := s.readSegment(ctx, g, false)
		if err != nil {
			return false, 0, "", "", err
		}
		fresh = slices.DeleteFunc(slices.Clone(fresh), func(p string) bool {
			_, in := slices.BinarySearch(pos, p)
			return in
		})
	}
	// The new segment takes in the smallest segments it has room for.
	var merged []segment
	var all []string
	if len(fresh) > 0 {
		all = slices.Clone(fresh)
		slices.SortFunc(segs, func(a, b segment) int { return a.count - b.count })
		for _, g := range segs {
			if len(all)+g.count > s.segmentMax() {
				break
			}
			pos, err := s.readSegment(ctx, g, false)
			if err != nil {
				return false, 0, "", "", err
			}
			all = append(all, pos...)
			merged = append(merged, g)
		}
		slices.Sort(all)
		all = slices.Compact(all)
	}
	var added []segment
	undo := func() {
		for _, g := range added {
			_ = s.Segments.DeleteBlob(context.WithoutCancel(ctx), g.object)
		}
	}
	for chunk := range slices.Chunk(all, s.segmentMax()) {
		id := strings.ToLower(rand.Text()[:16]) // 80 random bits
		g := segment{from: chunk[0][:16], to: chunk[len(chunk)-1][:16], count: len(chunk), id: id, object: s.segmentObject(list, id)}
		if err := s.Segments.PutBlob(ctx, g.object, encodeSegment(chunk)); err != nil {
			undo()
			return false, 0, "", "", err
		}
		added = append(added, g)
	}
	args := []any{len(added), len(merged), len(merged)}
	for _, g := range added {
		args = append(args, g.member())
	}
	for _, g := range merged {
		args = append(args, g.member())
	}
	for _, g := range merged {
		args = append(args, trashMember(now.Add(trashAfter), g.id))
	}
	for _, e := range entries {
		args = append(args, e)
	}
	key := s.listKey(list)
	var res *goredis.Cmd
	if err := s.write(ctx, step{key, func(p goredis.Pipeliner, eval evalFunc) {
		res = eval(moveScript, ctx, p, []string{key}, args...)
	}}); err != nil {
		// Not known to be swapped in: the objects stay (nothing names
		// them if it was not).
		return false, 0, "", "", err
	}
	out, err := res.StringSlice()
	if err != nil || len(out) == 0 {
		return false, 0, "", "", fmt.Errorf("redis: move answered %v: %w", out, err)
	}
	if out[0] != "1" {
		undo()
		return false, 0, "", "", nil
	}
	if len(out) == 3 {
		first, trash = out[1], out[2]
	}
	return true, len(added), first, trash, nil
}

// segmentObject names a segment's object: the store's prefix and the
// list's name hashed (a folder of the list's segments), then the
// segment's id (random: never written twice, so a name deleted is never
// one still named).
func (s *Store) segmentObject(list, id string) string {
	h := sha256.Sum256([]byte(s.Prefix + "\x00" + list))
	return "segments/" + hex.EncodeToString(h[:12]) + "/" + id
}

// RepairSegments drops, from every timeline, the members of segments the
// archive does not hold (errSegmentMissing), so that the list reads again
// once `corridor reindex` has filed its entries again. It returns how many
// it dropped. It reads every segment: run it with reindex, not while
// serving.
func (s *Store) RepairSegments(ctx context.Context) (int, error) {
	if s.Segments == nil {
		return 0, nil
	}
	dropped := 0
	repair := func(ctx context.Context, c goredis.Cmdable) error {
		iter := c.Scan(ctx, 0, s.listKey("ship:*:events"), 1000).Iterator()
		for iter.Next(ctx) {
			list := strings.TrimPrefix(iter.Val(), s.listKey(""))
			if !s.compacting(list) {
				continue
			}
			members, err := s.cmd.ZRangeArgs(ctx, s.segmentArgs(list)).Result()
			if err != nil {
				return wrap(err)
			}
			var gone []any
			for _, m := range members {
				g, ok := s.parseSegment(list, m)
				if ok {
					_, err = s.Segments.Blob(ctx, g.object)
				}
				if !ok || errors.Is(err, exchange.ErrNotFound) {
					gone = append(gone, m)
				} else if err != nil {
					return err
				}
			}
			if len(gone) > 0 {
				key := s.listKey(list)
				if err := s.write(ctx, step{key, func(p goredis.Pipeliner, _ evalFunc) { p.ZRem(ctx, key, gone...) }}); err != nil {
					return err
				}
				dropped += len(gone)
			}
		}
		return wrap(iter.Err())
	}
	var err error
	if cc, ok := s.cmd.(*goredis.ClusterClient); ok {
		var mu sync.Mutex
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			mu.Lock() // one master at a time (dropped)
			defer mu.Unlock()
			return repair(ctx, c)
		})
	} else {
		err = repair(ctx, s.cmd)
	}
	return dropped, err
}

// RunCompaction compacts every interval until ctx ends, with one gateway
// at a time doing it (a lock in Redis, held by a gateway that died for at
// most compactLock), and reports each run that did something or failed
// to done (nil: not told); a run cut short by ctx ending reports what it
// did without an error (shutting down is not a failure).
func (s *Store) RunCompaction(ctx context.Context, every time.Duration, done func(Compaction, error)) {
	t := time.NewTicker(every)
	defer t.Stop()
	lock := s.Prefix + ":compacting"
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		token := rand.Text()
		ok, err := s.cmd.SetNX(ctx, lock, token, max(every, compactLock)).Result()
		if err != nil || !ok {
			continue // another gateway compacts now (or Redis is away: next time)
		}
		// Redis' clock, not this gateway's: the delay before a segment
		// merged away is deleted holds whichever gateway deletes it.
		now, err := s.cmd.Time(ctx).Result()
		if err != nil {
			now = time.Now()
		}
		c, err := s.Compact(ctx, now)
		_ = releaseScript.Run(context.WithoutCancel(ctx), s.cmd, []string{lock}, token).Err()
		if ctx.Err() != nil {
			err = nil // stopped (the gateway shutting down), not failed: what it moved still counts
		}
		if done != nil && (err != nil || c.Moved > 0 || c.Deleted > 0 || c.Failed > 0) {
			done(c, err)
		}
	}
}
