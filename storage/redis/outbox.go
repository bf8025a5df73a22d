package redis

import (
	"context"
	"errors"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/exchange"
)

var _ exchange.Outbox = (*Store)(nil)

// outboxKey is one sorted set: document ids scored by the Unix
// microseconds they were marked at. Like everything here it can be lost
// with Redis; `corridor reindex --requeue` then delivers from the archive.
func (s *Store) outboxKey() string { return s.Prefix + ":outbox" }

// markScript marks a document (ARGV[1]) since ARGV[2] and returns whether
// it was marked already.
var markScript = goredis.NewScript(`
local was = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
if was then return 1 end
return 0`)

// Mark records a document as being delivered since at: a write like the
// index's, so with WaitReplicas a promoted replica has the mark too (a
// retry of the submission reads it to tell a delivery that ended).
func (s *Store) Mark(ctx context.Context, id string, at time.Time) (bool, error) {
	var res *goredis.Cmd
	key := s.outboxKey()
	if err := s.write(ctx, step{key, func(p goredis.Pipeliner, eval evalFunc) {
		res = eval(markScript, ctx, p, []string{key}, id, at.UnixMicro())
	}}); err != nil {
		return false, err
	}
	was, err := res.Int()
	return was == 1, wrap(err)
}

// Marked reports whether a document is marked.
func (s *Store) Marked(ctx context.Context, id string) (bool, error) {
	_, err := s.cmd.ZScore(ctx, s.outboxKey(), id).Result()
	if errors.Is(err, goredis.Nil) {
		return false, nil
	}
	return err == nil, wrap(err)
}

var unmarkScript = goredis.NewScript(`
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if at and (ARGV[2] == '' or tonumber(at) == tonumber(ARGV[2])) then
  return redis.call('ZREM', KEYS[1], ARGV[1])
end
return 0`)

// Unmark forgets a document if it is still marked at markedAt (any time
// when markedAt is zero).
func (s *Store) Unmark(ctx context.Context, id string, markedAt time.Time) error {
	at := ""
	if !markedAt.IsZero() {
		at = strconv.FormatInt(markedAt.UnixMicro(), 10)
	}
	return wrap(unmarkScript.Run(ctx, s.cmd, []string{s.outboxKey()}, id, at).Err())
}

// Pending returns up to limit documents marked before before, oldest first.
func (s *Store) Pending(ctx context.Context, before time.Time, limit int) ([]exchange.Pending, error) {
	zs, err := s.cmd.ZRangeByScoreWithScores(ctx, s.outboxKey(), &goredis.ZRangeBy{
		Min: "-inf", Max: "(" + strconv.FormatInt(before.UnixMicro(), 10), Count: int64(limit)}).Result()
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]exchange.Pending, 0, len(zs))
	for _, z := range zs {
		id, _ := z.Member.(string)
		out = append(out, exchange.Pending{ID: id, Since: time.UnixMicro(int64(z.Score)).UTC()})
	}
	return out, nil
}
