package local

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/landsea/corridor/exchange"
)

var (
	_ exchange.PushQueue     = (*Store)(nil)
	_ exchange.Subscriptions = (*Store)(nil)
)

var (
	bSubs     = []byte("subscriptions")
	bPush     = []byte("push")    // subscription -> document -> state
	bPushLog  = []byte("pushlog") // subscription -> seq -> attempt
	maxLogged = 1000
)

// Peek returns waiting messages without claiming them.
func (s *Store) Peek(ctx context.Context, party, after string, limit int) ([]exchange.Message, string, error) {
	var out []exchange.Message
	next := after
	err := s.db.View(func(tx *bolt.Tx) error {
		in := tx.Bucket(bInbox).Bucket([]byte(party))
		if in == nil || in.Bucket(bMsgs) == nil {
			return nil
		}
		c := in.Bucket(bMsgs).Cursor()
		k, v := c.First()
		if after != "" {
			from, err := hex.DecodeString(after)
			if err != nil {
				return fmt.Errorf("peek: bad position %q", after)
			}
			if k, v = c.Seek(from); k != nil && bytes.Equal(k, from) {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			var m exchange.Message
			if json.Unmarshal(v, &m) == nil {
				out = append(out, m)
			}
			next = hex.EncodeToString(k)
		}
		return nil
	})
	return out, next, err
}

// Lease: one process holds the whole store (bbolt locks the file), so
// every lease is this process's; it is kept in memory.
func (s *Store) Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leases == nil {
		s.leases = map[string]lease{}
	}
	now := s.now()
	if l, ok := s.leases[name]; ok && l.holder != holder && now.Before(l.until) {
		return false, nil
	}
	s.leases[name] = lease{holder: holder, until: now.Add(ttl)}
	return true, nil
}

type lease struct {
	holder string
	until  time.Time
}

// PushState returns a message's push state for a subscription.
func (s *Store) PushState(ctx context.Context, sub, doc string) (exchange.PushState, error) {
	var st exchange.PushState
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bPush)
		if b == nil || b.Bucket([]byte(sub)) == nil {
			return nil
		}
		if raw := b.Bucket([]byte(sub)).Get([]byte(doc)); raw != nil {
			return json.Unmarshal(raw, &st)
		}
		return nil
	})
	return st, err
}

// SetPushState stores it; the zero state removes it.
func (s *Store) SetPushState(ctx context.Context, sub, doc string, st exchange.PushState) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bPush).CreateBucketIfNotExists([]byte(sub))
		if err != nil {
			return err
		}
		if st == (exchange.PushState{}) {
			return b.Delete([]byte(doc))
		}
		raw, err := json.Marshal(st)
		if err != nil {
			return err
		}
		return b.Put([]byte(doc), raw)
	})
}

// LogAttempt keeps the newest attempts of a subscription.
func (s *Store) LogAttempt(ctx context.Context, sub string, a exchange.Attempt) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bPushLog).CreateBucketIfNotExists([]byte(sub))
		if err != nil {
			return err
		}
		seq, _ := b.NextSequence()
		if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), raw); err != nil {
			return err
		}
		for b.Stats().KeyN > maxLogged {
			k, _ := b.Cursor().First()
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Attempts returns a subscription's newest attempts first.
func (s *Store) Attempts(ctx context.Context, sub string, limit int) ([]exchange.Attempt, error) {
	var out []exchange.Attempt
	err := s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bPushLog)
		if root == nil || root.Bucket([]byte(sub)) == nil {
			return nil
		}
		c := root.Bucket([]byte(sub)).Cursor()
		for k, v := c.Last(); k != nil && len(out) < limit; k, v = c.Prev() {
			var a exchange.Attempt
			if err := json.Unmarshal(v, &a); err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

// PutSubscription stores a subscription.
func (s *Store) PutSubscription(ctx context.Context, sub exchange.Subscription) error {
	return s.putJSON(bSubs, sub.ID, sub, false)
}

// Subscription returns one.
func (s *Store) Subscription(ctx context.Context, id string) (exchange.Subscription, error) {
	var sub exchange.Subscription
	return sub, s.getJSON(bSubs, id, &sub)
}

// DeleteSubscription removes one.
func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bSubs).Delete([]byte(id)) })
}

// ListSubscriptions returns them all.
func (s *Store) ListSubscriptions(ctx context.Context) ([]exchange.Subscription, error) {
	return allJSON[exchange.Subscription](s, bSubs)
}
