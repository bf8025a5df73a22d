package redis_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/redis"
)

// An inbox remembers a document it was sent while its message is pending,
// and once acked until DedupeWindow and a margin after the minute the
// document was received, and at least the margin after it was last
// enqueued; then the marks expire, and Redis holds nothing of the acked
// message but its expiring marks.
func TestAckedMessagesAreForgottenAfterTheWindow(t *testing.T) {
	ctx := context.Background()
	s := open(t, time.Minute)
	const party = "party-b"
	keys := s.InboxKeys(party)
	seq := 0
	msg := func(at time.Time) exchange.Message {
		seq++
		return exchange.Message{DocumentID: fmt.Sprintf("doc%023d", seq), Type: "tracking-event", ReceivedAt: at}
	}
	bucket := func(m exchange.Message) string { return keys[1] + ":" + strconv.FormatInt(m.ReceivedAt.Unix()/60, 10) }
	enqueue := func(ms ...exchange.Message) {
		t.Helper()
		for _, m := range ms {
			if err := s.Enqueue(ctx, m, party); err != nil {
				t.Fatal(err)
			}
		}
	}
	drain := func() (ids []string) {
		t.Helper()
		for {
			got, err := s.Pull(ctx, party, 100, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				return ids
			}
			var batch []string
			for _, m := range got {
				batch = append(batch, m.DocumentID)
			}
			if n, err := s.Ack(ctx, party, batch); err != nil || n != len(batch) {
				t.Fatalf("ack %d = %d, %v", len(batch), n, err)
			}
			ids = append(ids, batch...)
		}
	}

	// Received now: remembered for the window, from its minute's end.
	recent := msg(time.Now())
	enqueue(recent, recent)
	if ids := drain(); !slices.Equal(ids, []string{recent.DocumentID}) {
		t.Fatalf("pulled %v, want the recent document once", ids)
	}
	enqueue(recent)
	if ids := drain(); len(ids) != 0 {
		t.Fatalf("an acked document within the window came again: %v", ids)
	}
	const keep = 66 * time.Minute // the default window (1h) and its margin (6m)
	ttl, err := s.Cmd().TTL(ctx, bucket(recent)).Result()
	if err != nil || ttl < keep-time.Minute || ttl > keep+time.Minute {
		t.Fatalf("TTL of the recent document's marks %s, %v; want about %s", ttl, err, keep)
	}
	// A gateway with a shorter window does not cut the marks short.
	short := open(t, time.Minute)
	short.Prefix, short.DedupeWindow = s.Prefix, redis.MinDedupeWindow
	other := msg(recent.ReceivedAt)
	if err := short.Enqueue(ctx, other, party); err != nil {
		t.Fatal(err)
	}
	if again, err := s.Cmd().TTL(ctx, bucket(recent)).Result(); err != nil || again < ttl-time.Second {
		t.Fatalf("TTL after a gateway with a %s window enqueued: %s, %v; want still %s", short.DedupeWindow, again, err, ttl)
	}
	if ids := drain(); !slices.Equal(ids, []string{other.DocumentID}) {
		t.Fatalf("pulled %v, want the other recent document", ids)
	}
	enqueue(recent)
	if ids := drain(); len(ids) != 0 {
		t.Fatalf("an acked document within the window came again after a shorter window's enqueue: %v", ids)
	}
	if err := s.Enqueue(ctx, exchange.Message{DocumentID: "no-time"}, party); err == nil {
		t.Fatal("a message without receivedAt was queued; want an error (its marks would expire at once)")
	}

	// Received long ago: marked for the margin after each enqueue (a
	// sweep completing a delivery past the window queues nothing twice).
	const margin = 6 * time.Minute
	old := make([]exchange.Message, 200)
	for i := range old {
		old[i] = msg(time.Now().Add(-2 * s.DedupeWindow))
		enqueue(old[i], old[i])
	}
	if ids := drain(); len(ids) != len(old) {
		t.Fatalf("pulled %d of the %d old documents enqueued twice each, want each once", len(ids), len(old))
	}
	if n, err := s.Cmd().Exists(ctx, keys[2]).Result(); err != nil || n != 0 {
		t.Fatalf("the pending messages are left (%d, %v), want none", n, err)
	}
	for range 3 { // sweeps
		enqueue(old[0])
		if ids := drain(); len(ids) != 0 {
			t.Fatalf("an acked document past the window enqueued again within the margin came again: %v", ids)
		}
	}
	if ttl, err := s.Cmd().TTL(ctx, bucket(old[0])).Result(); err != nil || ttl <= margin-time.Minute || ttl > margin {
		t.Fatalf("TTL of the old documents' marks %s, %v; want about %s", ttl, err, margin)
	}

	// A gateway before these kept one set forever; it is still read.
	legacy := msg(time.Now())
	if err := s.Cmd().SAdd(ctx, keys[1], legacy.DocumentID).Err(); err != nil {
		t.Fatal(err)
	}
	enqueue(legacy)
	if ids := drain(); len(ids) != 0 {
		t.Fatalf("a document in the delivered set of before came again: %v", ids)
	}
	if err := s.Cmd().Del(ctx, keys[1]).Err(); err != nil {
		t.Fatal(err)
	}

	// What is left of the party: its inbox stream (empty) and the marks of
	// two minutes (the recent documents', the old ones', each expiring).
	left, err := s.Cmd().Keys(ctx, s.Prefix+":{"+party+"}:*").Result()
	slices.Sort(left)
	if want := []string{bucket(old[0]), bucket(recent), keys[0]}; err != nil || !slices.Equal(left, want) {
		t.Fatalf("the party's keys are %v (%v), want %v", left, err, want)
	}
	if n, err := s.Cmd().XLen(ctx, keys[0]).Result(); err != nil || n != 0 {
		t.Fatalf("inbox holds %d entries (%v), want none", n, err)
	}
}

func TestOpenRefusesAShortDedupeWindow(t *testing.T) {
	s := redis.New(testenv.RedisURL(t))
	s.DedupeWindow = redis.MinDedupeWindow - time.Second
	if err := s.Open(context.Background()); err == nil {
		s.Close()
		t.Fatalf("Open with a %s window succeeded; want an error", s.DedupeWindow)
	}
}

// Every gateway on one Redis keeps the same dedupe window: one opened
// with another is refused, and says how to change it.
func TestOneDedupeWindowPerRedis(t *testing.T) {
	first := open(t, time.Minute)
	other := redis.New(testenv.RedisURL(t))
	other.Prefix, other.DedupeWindow = first.Prefix, 2*time.Hour
	if err := other.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "--redis-dedupe-window") {
		if err == nil {
			other.Close()
		}
		t.Fatalf("Open with a 2h window beside a 1h one: %v; want refused", err)
	}
	same := redis.New(testenv.RedisURL(t))
	same.Prefix = first.Prefix
	if err := same.Open(context.Background()); err != nil {
		t.Fatalf("Open with the same window: %v", err)
	}
	same.Close()
}
