package redis

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/exchange"
)

var _ exchange.PushQueue = (*Store)(nil)

// Peek reads a party's stream without the consumer group: the stream
// holds exactly the messages not acked (ack deletes), oldest first.
func (s *Store) Peek(ctx context.Context, party, after string, limit int) ([]exchange.Message, string, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	entries, err := s.cmd.XRangeN(ctx, s.inboxKeys(party)[0], start, "+", int64(limit)).Result()
	if err != nil || len(entries) == 0 {
		return nil, after, wrap(err)
	}
	return decode(entries), entries[len(entries)-1].ID, nil
}

// leaseScript: take the lease when free or already ours; renew it.
var leaseScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

// Lease takes or renews a lease shared by every gateway on this Redis.
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	n, err := leaseScript.Run(ctx, s.cmd, []string{s.Prefix + ":lease:" + name}, holder, ttl.Milliseconds()).Int()
	return n == 1, wrap(err)
}

func (s *Store) pushKey(sub string) string    { return s.Prefix + ":push:{" + sub + "}:state" }
func (s *Store) pushLogKey(sub string) string { return s.Prefix + ":push:{" + sub + "}:log" }

// PushState returns a message's push state for a subscription.
func (s *Store) PushState(ctx context.Context, sub, doc string) (exchange.PushState, error) {
	var st exchange.PushState
	raw, err := s.cmd.HGet(ctx, s.pushKey(sub), doc).Bytes()
	if errors.Is(err, goredis.Nil) {
		return st, nil
	} else if err != nil {
		return st, wrap(err)
	}
	return st, json.Unmarshal(raw, &st)
}

// SetPushState stores it; the zero state removes it.
func (s *Store) SetPushState(ctx context.Context, sub, doc string, st exchange.PushState) error {
	if st == (exchange.PushState{}) {
		return wrap(s.cmd.HDel(ctx, s.pushKey(sub), doc).Err())
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return wrap(s.cmd.HSet(ctx, s.pushKey(sub), doc, raw).Err())
}

// LogAttempt keeps the newest 1000 attempts of a subscription.
func (s *Store) LogAttempt(ctx context.Context, sub string, a exchange.Attempt) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = s.cmd.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.LPush(ctx, s.pushLogKey(sub), raw)
		p.LTrim(ctx, s.pushLogKey(sub), 0, 999)
		return nil
	})
	return wrap(err)
}

// Attempts returns a subscription's newest attempts first.
func (s *Store) Attempts(ctx context.Context, sub string, limit int) ([]exchange.Attempt, error) {
	raws, err := s.cmd.LRange(ctx, s.pushLogKey(sub), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, wrap(err)
	}
	out := make([]exchange.Attempt, 0, len(raws))
	for _, r := range raws {
		var a exchange.Attempt
		if err := json.Unmarshal([]byte(r), &a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}
