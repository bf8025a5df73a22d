package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/redis"
)

// With RecordTTL a record stays in Redis until its document's receipt
// plus the TTL, and one received longer ago is not written (reindex of an
// older archive): Doc does not find it, Page lists it with a zero record
// (the service reads it from the archive), and its list entries and
// natural key stay.
func TestRecordTTL(t *testing.T) {
	for name, s := range map[string]func() *redis.Store{
		"Standalone": func() *redis.Store { return redis.New(testenv.RedisURL(t)) },
		"Cluster": func() *redis.Store {
			s := redis.New("")
			s.Cluster = testenv.RedisCluster(t)
			return s
		},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := s()
			st.RecordTTL = 2 * st.DedupeWindow
			st = openOn(t, st, time.Minute)
			list := "ship:" + st.Prefix + ":docs"
			now := time.Now().UTC().Truncate(time.Microsecond)
			record := func(ago time.Duration) exchange.Record {
				id := exchange.DocumentID("sender-a", "", []byte(ago.String()))
				return exchange.Record{Receipt: exchange.Receipt{ID: id, Type: "tracking-event", SchemaVersion: 1, Sender: "sender-a",
					SHA256: fmt.Sprintf("%064x", ago), ReceivedAt: now.Add(-ago), Signature: "sig"}, Keys: []string{"event:" + id}}
			}
			recent, old := record(st.RecordTTL/2), record(st.RecordTTL+time.Minute)
			for _, r := range []exchange.Record{recent, old} { // as a gateway without the TTL left them
				if err := st.Cmd().Set(ctx, st.DocKey(r.ID), "{}", 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			for _, r := range []exchange.Record{recent, old} {
				if err := st.Add(ctx, r, []exchange.Entry{{List: list, Pos: exchange.Position(r.ReceivedAt, r.ID)}}); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := st.Doc(ctx, recent.ID); err != nil || got.ID != recent.ID {
				t.Fatalf("Doc of the recent record = %s, %v", got.ID, err)
			}
			want := recent.ReceivedAt.Add(st.RecordTTL).UnixMilli()
			if at, err := st.Cmd().PExpireTime(ctx, st.DocKey(recent.ID)).Result(); err != nil || at.Milliseconds() != want {
				t.Fatalf("the recent record expires at %d ms (%v), want %d (received + TTL)", at.Milliseconds(), err, want)
			}
			if _, err := st.Doc(ctx, old.ID); !errors.Is(err, exchange.ErrNotFound) {
				t.Fatalf("Doc of a record past its TTL: %v; want ErrNotFound", err)
			}
			if n, err := st.Cmd().Exists(ctx, st.DocKey(old.ID)).Result(); err != nil || n != 0 {
				t.Fatalf("a record past its TTL is in Redis (%d, %v)", n, err)
			}
			items, err := st.Page(ctx, list, "", 10, false)
			if err != nil || len(items) != 2 || exchange.PositionID(items[0].Pos) != old.ID || items[0].Record.ID != "" ||
				items[1].Record.ID != recent.ID {
				t.Fatalf("Page = %+v, %v; want the old entry with a zero record, then the recent one", items, err)
			}
			for _, r := range []exchange.Record{recent, old} {
				if id, err := st.Lookup(ctx, r.Keys[0]); err != nil || id != r.ID {
					t.Fatalf("Lookup(%s) = %s, %v; want %s", r.Keys[0], id, err, r.ID)
				}
			}
		})
	}
}

// A record must stay in Redis at least as long as its messages are
// remembered: a retry within the window is answered from it.
func TestOpenRefusesARecordTTLBelowTheWindow(t *testing.T) {
	s := redis.New(testenv.RedisURL(t))
	s.Prefix = testenv.Prefix()
	s.RecordTTL = s.DedupeWindow - time.Second
	if err := s.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "RecordTTL") {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open with RecordTTL %s and a %s window: %v; want refused", s.RecordTTL, s.DedupeWindow, err)
	}
	s.RecordTTL = s.DedupeWindow
	if err := s.Open(context.Background()); err != nil {
		t.Fatalf("Open with RecordTTL the window: %v", err)
	}
	s.Close()
}

// Every gateway on one Redis keeps records as long: one opened with
// another TTL (or none) is refused, and says how to change it.
func TestOneRecordTTLPerRedis(t *testing.T) {
	first := redis.New(testenv.RedisURL(t))
	first.RecordTTL = 2 * first.DedupeWindow
	first = openOn(t, first, time.Minute)
	for _, ttl := range []time.Duration{0, 3 * first.DedupeWindow} {
		other := redis.New(testenv.RedisURL(t))
		other.Prefix, other.RecordTTL = first.Prefix, ttl
		if err := other.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "--redis-record-ttl") {
			if err == nil {
				other.Close()
			}
			t.Fatalf("Open with record TTL %s beside %s: %v; want refused", ttl, first.RecordTTL, err)
		}
	}
	same := redis.New(testenv.RedisURL(t))
	same.Prefix, same.RecordTTL = first.Prefix, first.RecordTTL
	if err := same.Open(context.Background()); err != nil {
		t.Fatalf("Open with the same record TTL: %v", err)
	}
	same.Close()
}
