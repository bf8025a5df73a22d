package local

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/landsea/corridor/exchange"
)

var _ exchange.Outbox = (*Store)(nil)

var (
	bOutbox   = []byte("outbox")   // document id -> its key in bOutboxAt
	bOutboxAt = []byte("outboxAt") // 8 bytes of Unix microseconds, then the id -> nothing
)

func outboxKey(id string, at time.Time) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(max(at.UnixMicro(), 0)))
	return append(k, id...)
}

// Mark records a document as being delivered since at, and reports
// whether it was marked already.
func (s *Store) Mark(_ context.Context, id string, at time.Time) (was bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		ids, byAt := tx.Bucket(bOutbox), tx.Bucket(bOutboxAt)
		if old := ids.Get([]byte(id)); old != nil {
			was = true
			if err := byAt.Delete(old); err != nil {
				return err
			}
		}
		k := outboxKey(id, at)
		if err := ids.Put([]byte(id), k); err != nil {
			return err
		}
		return byAt.Put(k, []byte{})
	})
	return was, err
}

// Unmark forgets a document if it is still marked at markedAt (any time
// when markedAt is zero).
func (s *Store) Unmark(_ context.Context, id string, markedAt time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		ids := tx.Bucket(bOutbox)
		old := ids.Get([]byte(id))
		if old == nil || (!markedAt.IsZero() && !bytes.Equal(old, outboxKey(id, markedAt))) {
			return nil
		}
		if err := tx.Bucket(bOutboxAt).Delete(old); err != nil {
			return err
		}
		return ids.Delete([]byte(id))
	})
}

// Pending returns up to limit documents marked before before, oldest first.
func (s *Store) Pending(_ context.Context, before time.Time, limit int) ([]exchange.Pending, error) {
	var out []exchange.Pending
	end := binary.BigEndian.AppendUint64(nil, uint64(max(before.UnixMicro(), 0)))
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bOutboxAt).Cursor()
		for k, _ := c.First(); k != nil && len(out) < limit && bytes.Compare(k[:8], end) < 0; k, _ = c.Next() {
			out = append(out, exchange.Pending{ID: string(k[8:]),
				Since: time.UnixMicro(int64(binary.BigEndian.Uint64(k[:8]))).UTC()})
		}
		return nil
	})
	return out, err
}

// Marked reports whether a document is marked.
func (s *Store) Marked(_ context.Context, id string) (bool, error) {
	var marked bool
	err := s.db.View(func(tx *bolt.Tx) error {
		marked = tx.Bucket(bOutbox).Get([]byte(id)) != nil
		return nil
	})
	return marked, err
}
