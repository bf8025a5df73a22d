package local

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/landsea/corridor/exchange"
)

// Enqueue appends a message to each party's inbox once per document, all
// in one transaction.
func (s *Store) Enqueue(ctx context.Context, m exchange.Message, parties ...string) error {
	if m.ReceivedAt.IsZero() {
		return fmt.Errorf("enqueue %s: the message has no receivedAt", m.DocumentID)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, party := range parties {
			if err := enqueue(tx, party, m.DocumentID, raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		for _, party := range parties {
			s.wake(party)
		}
	}
	return err
}

func enqueue(tx *bolt.Tx, party, doc string, raw []byte) error {
	in, err := inbox(tx, party)
	if err != nil {
		return err
	}
	seen := in.Bucket(bSeen)
	if seen.Get([]byte(doc)) != nil {
		return nil
	}
	msgs := in.Bucket(bMsgs)
	seq, err := msgs.NextSequence()
	if err != nil {
		return err
	}
	k := binary.BigEndian.AppendUint64(nil, seq)
	if err := msgs.Put(k, raw); err != nil {
		return err
	}
	if err := in.Bucket(bByDoc).Put([]byte(doc), k); err != nil {
		return err
	}
	return seen.Put([]byte(doc), k)
}

// inbox opens a party's inbox in a write transaction, creating what is
// missing. (Bucket first: CreateBucketIfNotExists copies its key on every
// call, and Enqueue opens five buckets per recipient.)
func inbox(tx *bolt.Tx, party string) (*bolt.Bucket, error) {
	in, err := bucket(tx.Bucket(bInbox), []byte(party))
	if err != nil {
		return nil, err
	}
	for _, b := range [][]byte{bMsgs, bByDoc, bSeen, bFlight} {
		if _, err := bucket(in, b); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// bucket opens or creates a nested bucket.
func bucket(parent *bolt.Bucket, name []byte) (*bolt.Bucket, error) {
	if b := parent.Bucket(name); b != nil {
		return b, nil
	}
	return parent.CreateBucketIfNotExists(name)
}

// Pull claims up to limit visible messages, oldest first, waiting up to
// wait for one when there are none.
func (s *Store) Pull(ctx context.Context, party string, limit int, wait time.Duration) ([]exchange.Message, error) {
	deadline := s.now().Add(wait)
	for {
		ch := s.waiter(party) // taken before the claim, so no enqueue is missed
		msgs, next, err := s.claim(party, limit)
		if err != nil || len(msgs) > 0 {
			return msgs, err
		}
		now := s.now()
		if !now.Before(deadline) {
			return msgs, nil
		}
		d := deadline.Sub(now)
		if !next.IsZero() && next.Sub(now) < d {
			d = max(next.Sub(now), time.Millisecond)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
}

// claim marks visible messages in flight; next is when the earliest
// in-flight message becomes visible again. Most pulls find nothing to
// claim, so it looks first in a read-only transaction and writes (a
// commit is an fsync) only when there is something to claim.
func (s *Store) claim(party string, limit int) (msgs []exchange.Message, next time.Time, err error) {
	now := s.now()
	found := false
	err = s.db.View(func(tx *bolt.Tx) error {
		in := tx.Bucket(bInbox).Bucket([]byte(party))
		if in == nil {
			return nil
		}
		next, err = visible(in, now, 1, func(_, _ []byte) error { found = true; return nil })
		return err
	})
	if err != nil || !found {
		return nil, next, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		in, err := inbox(tx, party)
		if err != nil {
			return err
		}
		at := binary.BigEndian.AppendUint64(nil, uint64(now.Add(s.VisibilityTimeout).UnixNano()))
		next, err = visible(in, now, limit, func(k, v []byte) error {
			var m exchange.Message
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			msgs = append(msgs, m)
			return in.Bucket(bFlight).Put(k, at)
		})
		return err
	})
	return msgs, next, err
}

// visible calls fn, in queue order, for up to limit messages not in
// flight at now, and returns when the earliest in-flight one it passed
// becomes visible again. fn's first error stops it.
func visible(in *bolt.Bucket, now time.Time, limit int, fn func(k, v []byte) error) (next time.Time, err error) {
	msgs, flight := in.Bucket(bMsgs), in.Bucket(bFlight)
	n := 0
	c := msgs.Cursor()
	for k, v := c.First(); k != nil && n < limit; k, v = c.Next() {
		if f := flight.Get(k); f != nil {
			at := time.Unix(0, int64(binary.BigEndian.Uint64(f)))
			if at.After(now) {
				if next.IsZero() || at.Before(next) {
					next = at
				}
				continue
			}
		}
		if err := fn(k, v); err != nil {
			return next, err
		}
		n++
	}
	return next, nil
}

// Ack deletes the party's pending messages of these documents.
func (s *Store) Ack(ctx context.Context, party string, ids []string) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		in, err := inbox(tx, party)
		if err != nil {
			return err
		}
		byDoc := in.Bucket(bByDoc)
		for _, id := range ids {
			k := byDoc.Get([]byte(id))
			if k == nil {
				continue
			}
			k = append([]byte(nil), k...)
			for _, b := range [][]byte{bMsgs, bFlight} {
				if err := in.Bucket(b).Delete(k); err != nil {
					return err
				}
			}
			if err := byDoc.Delete([]byte(id)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

func (s *Store) waiter(party string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.waiters[party]
	if !ok {
		ch = make(chan struct{})
		s.waiters[party] = ch
	}
	return ch
}

func (s *Store) wake(party string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.waiters[party]; ok {
		close(ch)
		delete(s.waiters, party)
	}
}
