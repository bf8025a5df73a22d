// Package storagetest is the conformance suite every storage backend
// passes: the same cases, run against the embedded store, Redis and S3.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

var seq int

// record makes a distinct record; ids must look like document ids.
func record(t *testing.T, refs ...string) exchange.Record {
	t.Helper()
	seq++
	id := exchange.DocumentID(fmt.Sprintf("%s-%d-%d", t.Name(), seq, time.Now().UnixNano()), "", []byte{byte(seq)})
	return exchange.Record{Receipt: exchange.Receipt{ID: id, Type: "tracking-event", SchemaVersion: 1, Sender: "sender-a",
		SHA256: fmt.Sprintf("%064x", seq), ReceivedAt: time.Now().UTC().Truncate(time.Microsecond).Add(time.Duration(seq) * time.Millisecond),
		Recipients: []string{"party-b"}, Signature: "sig"}, Refs: refs, Size: 3}
}

// get reads a document's record and bytes.
func get(t *testing.T, a exchange.Archive, id string) (exchange.Record, []byte, error) {
	rec, err := a.Record(ctx(t), id)
	if err != nil {
		return rec, nil, err
	}
	body, err := a.Body(ctx(t), id)
	return rec, body, err
}

// Archive runs the archive cases against fresh archives from newArchive.
func Archive(t *testing.T, newArchive func(t *testing.T) exchange.Archive) {
	t.Run("ByteExactRead", func(t *testing.T) {
		a := newArchive(t)
		body := []byte("{\"name\": \"重庆 → Qinzhou\",\r\n  \"n\": 1.50e3 }\n\t")
		rec := record(t)
		if err := a.Put(ctx(t), rec, body); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, gotBody, err := get(t, a, rec.ID)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !bytes.Equal(gotBody, body) {
			t.Fatalf("body = %q, want %q", gotBody, body)
		}
		if got.SHA256 != rec.SHA256 || got.Sender != rec.Sender || !got.ReceivedAt.Equal(rec.ReceivedAt) || !slices.Equal(got.Recipients, rec.Recipients) {
			t.Fatalf("record = %+v, want %+v", got, rec)
		}
	})
	t.Run("WriteOnce", func(t *testing.T) {
		a := newArchive(t)
		rec := record(t)
		if err := a.Put(ctx(t), rec, []byte(`{"v":1}`)); err != nil {
			t.Fatal(err)
		}
		changed := rec
		changed.Sender = "intruder"
		if err := a.Put(ctx(t), changed, []byte(`{"v":2}`)); !errors.Is(err, exchange.ErrExists) {
			t.Fatalf("second Put = %v, want ErrExists", err)
		}
		got, body, err := get(t, a, rec.ID)
		if err != nil || string(body) != `{"v":1}` || got.Sender != rec.Sender {
			t.Fatalf("after second Put: %q %+v %v; want the first version unchanged", body, got, err)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		a := newArchive(t)
		if _, err := a.Body(ctx(t), record(t).ID); !errors.Is(err, exchange.ErrNotFound) {
			t.Fatalf("Body of unknown id = %v, want ErrNotFound", err)
		}
		if _, err := a.Record(ctx(t), record(t).ID); !errors.Is(err, exchange.ErrNotFound) {
			t.Fatalf("Record of unknown id = %v, want ErrNotFound", err)
		}
	})
	t.Run("Walk", func(t *testing.T) {
		a := newArchive(t)
		want := map[string]bool{}
		for range 3 {
			rec := record(t)
			want[rec.ID] = true
			if err := a.Put(ctx(t), rec, []byte("{}")); err != nil {
				t.Fatal(err)
			}
		}
		got := map[string]bool{}
		err := a.Walk(ctx(t), func(r exchange.Record) error { got[r.ID] = true; return nil })
		if err != nil {
			t.Fatal(err)
		}
		for id := range want {
			if !got[id] {
				t.Fatalf("Walk missed %s (got %v)", id, got)
			}
		}
	})
}

// Queue runs the queue cases; newQueue returns a fresh queue with the given
// visibility timeout.
func Queue(t *testing.T, newQueue func(t *testing.T, visibility time.Duration) exchange.Queue) {
	msg := func(t *testing.T) exchange.Message { return exchange.MessageOf(record(t)) }
	ids := func(ms []exchange.Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.DocumentID)
		}
		return out
	}
	t.Run("OrderAndAck", func(t *testing.T) {
		q := newQueue(t, time.Minute)
		var want []string
		for range 5 {
			m := msg(t)
			want = append(want, m.DocumentID)
			if err := q.Enqueue(ctx(t), m, "party-b"); err != nil {
				t.Fatal(err)
			}
		}
		got, err := q.Pull(ctx(t), "party-b", 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), want[:3]) {
			t.Fatalf("first pull = %v, want %v", ids(got), want[:3])
		}
		got2, err := q.Pull(ctx(t), "party-b", 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got2), want[3:]) {
			t.Fatalf("second pull = %v, want %v (in-flight messages must stay hidden)", ids(got2), want[3:])
		}
		n, err := q.Ack(ctx(t), "party-b", want)
		if err != nil || n != 5 {
			t.Fatalf("Ack = %d, %v; want 5", n, err)
		}
		n, err = q.Ack(ctx(t), "party-b", want[:1])
		if err != nil || n != 0 {
			t.Fatalf("second Ack = %d, %v; want 0", n, err)
		}
		if got[0].Type != "tracking-event" || got[0].Sender != "sender-a" || got[0].SHA256 == "" || got[0].ReceivedAt.IsZero() {
			t.Fatalf("message fields lost: %+v", got[0])
		}
	})
	t.Run("RedeliveryAfterTimeout", func(t *testing.T) {
		// The timeout is long enough that the second pull, right after the
		// first, cannot miss it even on a loaded machine.
		q := newQueue(t, time.Second)
		m := msg(t)
		if err := q.Enqueue(ctx(t), m, "party-b"); err != nil {
			t.Fatal(err)
		}
		first, err := q.Pull(ctx(t), "party-b", 10, 0)
		if err != nil || len(first) != 1 {
			t.Fatalf("pull = %v, %v", first, err)
		}
		hidden, err := q.Pull(ctx(t), "party-b", 10, 0)
		if err != nil || len(hidden) != 0 {
			t.Fatalf("pull right after = %v, %v; want nothing while in flight", ids(hidden), err)
		}
		// A long poll longer than the timeout gets the message again.
		again, err := q.Pull(ctx(t), "party-b", 10, 10*time.Second)
		if err != nil || !slices.Equal(ids(again), []string{m.DocumentID}) {
			t.Fatalf("pull after timeout = %v, %v; want %s again", ids(again), err, m.DocumentID)
		}
	})
	t.Run("NoRedeliveryAfterAck", func(t *testing.T) {
		q := newQueue(t, 200*time.Millisecond)
		m := msg(t)
		if err := q.Enqueue(ctx(t), m, "party-b"); err != nil {
			t.Fatal(err)
		}
		got, err := q.Pull(ctx(t), "party-b", 10, 0)
		if err != nil || len(got) != 1 {
			t.Fatalf("pull = %v, %v", got, err)
		}
		if n, err := q.Ack(ctx(t), "party-b", ids(got)); err != nil || n != 1 {
			t.Fatalf("ack = %d, %v", n, err)
		}
		// Wait well past the visibility timeout: nothing comes back.
		again, err := q.Pull(ctx(t), "party-b", 10, time.Second)
		if err != nil || len(again) != 0 {
			t.Fatalf("pull after ack = %v, %v; want nothing", ids(again), err)
		}
	})
	t.Run("EnqueueIsIdempotent", func(t *testing.T) {
		q := newQueue(t, time.Minute)
		m := msg(t)
		for range 3 {
			if err := q.Enqueue(ctx(t), m, "party-b"); err != nil {
				t.Fatal(err)
			}
		}
		got, err := q.Pull(ctx(t), "party-b", 10, 0)
		if err != nil || len(got) != 1 {
			t.Fatalf("pull = %v, %v; want one message", ids(got), err)
		}
		if _, err := q.Ack(ctx(t), "party-b", ids(got)); err != nil {
			t.Fatal(err)
		}
		if err := q.Enqueue(ctx(t), m, "party-b"); err != nil {
			t.Fatal(err)
		}
		if again, _ := q.Pull(ctx(t), "party-b", 10, 0); len(again) != 0 {
			t.Fatalf("an acked document enqueued again was delivered again: %v", ids(again))
		}
	})
	t.Run("EnqueueRefusesAMessageWithoutTime", func(t *testing.T) {
		q := newQueue(t, time.Minute)
		m := msg(t)
		m.ReceivedAt = time.Time{}
		if err := q.Enqueue(ctx(t), m, "party-b"); err == nil {
			t.Fatal("Enqueue of a message without receivedAt succeeded; want an error")
		}
		if got, err := q.Pull(ctx(t), "party-b", 10, 0); err != nil || len(got) != 0 {
			t.Fatalf("pull = %v, %v; want nothing queued", ids(got), err)
		}
	})
	t.Run("EnqueueToSeveral", func(t *testing.T) {
		q := newQueue(t, time.Minute)
		m := msg(t)
		if err := q.Enqueue(ctx(t), m, "party-b", "party-c", "party-b"); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"party-b", "party-c"} {
			got, err := q.Pull(ctx(t), p, 10, 0)
			if err != nil || !slices.Equal(ids(got), []string{m.DocumentID}) {
				t.Fatalf("%s pulled %v, %v; want the message once", p, ids(got), err)
			}
		}
	})
	t.Run("PartiesAreIsolated", func(t *testing.T) {
		q := newQueue(t, time.Minute)
		m := msg(t)
		if err := q.Enqueue(ctx(t), m, "party-b"); err != nil {
			t.Fatal(err)
		}
		if got, err := q.Pull(ctx(t), "party-c", 10, 0); err != nil || len(got) != 0 {
			t.Fatalf("party-c pulled %v, %v; want nothing", ids(got), err)
		}
		if n, err := q.Ack(ctx(t), "party-c", []string{m.DocumentID}); err != nil || n != 0 {
			t.Fatalf("party-c acked %d, %v; want 0", n, err)
		}
		if got, err := q.Pull(ctx(t), "party-b", 10, 0); err != nil || !slices.Equal(ids(got), []string{m.DocumentID}) {
			t.Fatalf("party-b pulled %v, %v; want its message", ids(got), err)
		}
	})
	t.Run("LongPollWakesOnEnqueue", func(t *testing.T) {
		q := newQueue(t, time.Minute)
		m := msg(t)
		type result struct {
			ms  []exchange.Message
			err error
		}
		done := make(chan result, 1)
		started := make(chan struct{})
		go func() {
			close(started)
			ms, err := q.Pull(ctx(t), "party-b", 10, 20*time.Second)
			done <- result{ms, err}
		}()
		<-started
		if err := q.Enqueue(ctx(t), m, "party-b"); err != nil {
			t.Fatal(err)
		}
		r := <-done
		if r.err != nil || !slices.Equal(ids(r.ms), []string{m.DocumentID}) {
			t.Fatalf("long poll = %v, %v; want the enqueued message", ids(r.ms), r.err)
		}
	})
	t.Run("EmptyPollReturnsEmpty", func(t *testing.T) {
		q := newQueue(t, time.Minute)
		got, err := q.Pull(ctx(t), "party-nobody", 10, 100*time.Millisecond)
		if err != nil || len(got) != 0 {
			t.Fatalf("pull of empty inbox = %v, %v", ids(got), err)
		}
	})
}

// Index runs the index cases against fresh indexes.
func Index(t *testing.T, newIndex func(t *testing.T) exchange.Index) {
	claimCases(t, newIndex)
	t.Run("ListsPageInOrder", func(t *testing.T) {
		ix := newIndex(t)
		list := "ship:" + t.Name() + fmt.Sprint(time.Now().UnixNano()) + ":events"
		a, b, c := record(t), record(t), record(t) // received in this order
		tie := record(t)
		tie.ReceivedAt = b.ReceivedAt // same time as b: the id decides
		at := func(r exchange.Record) []exchange.Entry {
			return []exchange.Entry{{List: list, Pos: exchange.Position(r.ReceivedAt, r.ID)}}
		}
		for _, r := range []exchange.Record{b, c, a, tie, b} { // b twice: Add is idempotent
			if err := ix.Add(ctx(t), r, at(r)); err != nil {
				t.Fatal(err)
			}
		}
		// A listed document whose record is not indexed comes with a zero
		// record (the service reads it from the archive).
		ghost := record(t)
		if err := ix.Add(ctx(t), c, append(at(c), at(ghost)...)); err != nil {
			t.Fatal(err)
		}
		mid := []string{b.ID, tie.ID}
		slices.Sort(mid)
		asc := []string{a.ID, mid[0], mid[1], c.ID}
		page := func(after string, limit int, desc bool) []exchange.Item {
			t.Helper()
			items, err := ix.Page(ctx(t), list, after, limit, desc)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range items {
				if id := exchange.PositionID(it.Pos); it.Record.ID != id && (id != ghost.ID || it.Record.ID != "") {
					t.Fatalf("position %q holds record %q", it.Pos, it.Record.ID)
				}
			}
			return items
		}
		asc = append(asc, ghost.ID+" (not indexed)")
		if got := itemIDs(page("", 10, false)); !slices.Equal(got, asc) {
			t.Fatalf("ascending = %v, want %v", got, asc)
		}
		desc := slices.Clone(asc)
		slices.Reverse(desc)
		if got := itemIDs(page("", 10, true)); !slices.Equal(got, desc) {
			t.Fatalf("descending = %v, want %v", got, desc)
		}
		// Pages of two, each starting after the last position of the one before.
		var got []string
		for after, n := "", 0; n < 5; n++ {
			items := page(after, 2, false)
			if len(items) == 0 {
				break
			}
			got = append(got, itemIDs(items)...)
			after = items[len(items)-1].Pos
		}
		if !slices.Equal(got, asc) {
			t.Fatalf("paged ascending = %v, want %v", got, asc)
		}
		// The newest entry is the ghost's.
		first := page("", 1, true)
		if got := itemIDs(first); !slices.Equal(got, desc[:1]) {
			t.Fatalf("newest = %v, want %v", got, desc[:1])
		}
		if got := itemIDs(page(first[0].Pos, 10, true)); !slices.Equal(got, desc[1:]) {
			t.Fatalf("descending after the newest = %v, want %v", got, desc[1:])
		}
		if got := page(exchange.Position(a.ReceivedAt, ""), 10, true); len(got) != 0 {
			t.Fatalf("descending from before the oldest = %v, want nothing", itemIDs(got))
		}
		if got, err := ix.Page(ctx(t), list+"-none", "", 10, false); err != nil || len(got) != 0 {
			t.Fatalf("unknown list = %v, %v", itemIDs(got), err)
		}
		// An index that reads several pages at once reads those Page reads.
		if p, ok := ix.(exchange.Pager); ok {
			qs := []exchange.PageQuery{{List: list, Limit: 10}, {List: list, Limit: 1, Desc: true}, {List: list + "-none", Limit: 10},
				{List: list, Limit: 2}, {List: list, After: first[0].Pos, Limit: 10, Desc: true}, {List: list, Limit: 0}}
			got, err := p.Pages(ctx(t), qs...)
			if err != nil || len(got) != len(qs) {
				t.Fatalf("Pages = %d pages, %v; want %d", len(got), err, len(qs))
			}
			for i, q := range qs {
				want, err := ix.Page(ctx(t), q.List, q.After, q.Limit, q.Desc)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(itemIDs(got[i]), itemIDs(want)) || !slices.EqualFunc(got[i], want, func(a, b exchange.Item) bool { return a.Pos == b.Pos }) {
					t.Fatalf("Pages %+v = %v; Page reads %v", q, itemIDs(got[i]), itemIDs(want))
				}
			}
		}
		for _, c := range []struct {
			list, pos string
			want      bool
		}{
			{list, exchange.Position(a.ReceivedAt, a.ID), true},
			{list, exchange.Position(a.ReceivedAt, b.ID), false},
			{list + "-none", exchange.Position(a.ReceivedAt, a.ID), false},
		} {
			if in, err := ix.Contains(ctx(t), c.list, c.pos); err != nil || in != c.want {
				t.Fatalf("Contains(%s, %s) = %v, %v; want %v", c.list, c.pos, in, err, c.want)
			}
		}
	})
	t.Run("AmendmentTakesItsKey", func(t *testing.T) {
		ix := newIndex(t)
		a, b, c := record(t), record(t), record(t)
		key := "rail-consignment-note:N-" + a.ID
		a.Keys, b.Keys, c.Keys = []string{key}, []string{key}, []string{key}
		b.PreviousID = a.ID                               // b amends a; c is another document with the same number
		for _, r := range []exchange.Record{a, c, b, a} { // a again, as a reindex in any order would
			if err := ix.Add(ctx(t), r, nil); err != nil {
				t.Fatal(err)
			}
		}
		if id, err := ix.Lookup(ctx(t), key); err != nil || id != b.ID {
			t.Fatalf("Lookup = %s, %v; want the amendment %s", id, err, b.ID)
		}
		// Indexed in the other order, the amendment still ends holding it.
		ix2 := newIndex(t)
		key2 := key + "-2"
		a.Keys, b.Keys = []string{key2}, []string{key2}
		for _, r := range []exchange.Record{b, a} {
			if err := ix2.Add(ctx(t), r, nil); err != nil {
				t.Fatal(err)
			}
		}
		if id, _ := ix2.Lookup(ctx(t), key2); id != b.ID {
			t.Fatalf("Lookup after amendment-first = %s, want %s", id, b.ID)
		}
	})
	t.Run("DocAndLookup", func(t *testing.T) {
		ix := newIndex(t)
		a, b := record(t), record(t)
		a.Keys = []string{"one-bill:X-" + a.ID}
		b.Keys = a.Keys
		a.Facts = map[string]string{"holder": "party-b"}
		for _, r := range []exchange.Record{a, b} {
			if err := ix.Add(ctx(t), r, nil); err != nil {
				t.Fatal(err)
			}
		}
		id, err := ix.Lookup(ctx(t), a.Keys[0])
		if err != nil || id != a.ID {
			t.Fatalf("Lookup = %s, %v; want the first holder %s", id, err, a.ID)
		}
		got, err := ix.Doc(ctx(t), a.ID)
		if err != nil || got.Facts["holder"] != "party-b" || got.Sender != a.Sender {
			t.Fatalf("Doc = %+v, %v", got, err)
		}
		if _, err := ix.Lookup(ctx(t), "one-bill:none"); !errors.Is(err, exchange.ErrNotFound) {
			t.Fatalf("Lookup of unknown key = %v, want ErrNotFound", err)
		}
		if _, err := ix.Doc(ctx(t), record(t).ID); !errors.Is(err, exchange.ErrNotFound) {
			t.Fatalf("Doc of unknown id = %v, want ErrNotFound", err)
		}
	})
}

// ClaimCases checks natural-key claims; run inside Index.
func claimCases(t *testing.T, newIndex func(t *testing.T) exchange.Index) {
	now := time.Now()
	never := now.Add(-time.Hour) // nothing is stale
	always := now.Add(time.Hour) // every pending claim is stale
	t.Run("ClaimFreeAndOwn", func(t *testing.T) {
		ix := newIndex(t)
		a, b := record(t), record(t)
		key := "one-bill:CLAIM-" + a.ID
		for i := range 2 { // made the first time, renewed the second
			if h, made, err := ix.Claim(ctx(t), key, a.ID, now, never); err != nil || h != a.ID || made != (i == 0) {
				t.Fatalf("Claim %d by a = %s, made %v, %v; want a, made %v", i+1, h, made, err, i == 0)
			}
		}
		if h, made, err := ix.Claim(ctx(t), key, b.ID, now, never); err != nil || h != a.ID || made {
			t.Fatalf("Claim by b of a's fresh claim = %s, made %v, %v; want a", h, made, err)
		}
		if _, err := ix.Lookup(ctx(t), key); !errors.Is(err, exchange.ErrNotFound) {
			t.Fatalf("Lookup of a pending claim = %v, want ErrNotFound", err)
		}
		// Holder sees the claim, and its time (renewed: now, to the µs).
		if id, since, err := ix.Holder(ctx(t), key); err != nil || id != a.ID || since.Sub(now).Abs() > time.Microsecond {
			t.Fatalf("Holder of a pending claim = %s since %v, %v; want a since %v", id, since, err, now)
		}
		if _, _, err := ix.Holder(ctx(t), key+"-NONE"); !errors.Is(err, exchange.ErrNotFound) {
			t.Fatalf("Holder of a free key = %v, want ErrNotFound", err)
		}
		a.Keys = []string{key}
		if err := ix.Add(ctx(t), a, nil); err != nil {
			t.Fatal(err)
		}
		if id, err := ix.Lookup(ctx(t), key); err != nil || id != a.ID {
			t.Fatalf("Lookup after Add = %s, %v; want a", id, err)
		}
		if id, since, err := ix.Holder(ctx(t), key); err != nil || id != a.ID || !since.IsZero() {
			t.Fatalf("Holder after Add = %s since %v, %v; want a, indexed", id, since, err)
		}
		// An indexed holder never gives way, however old.
		if h, made, err := ix.Claim(ctx(t), key, b.ID, now, always); err != nil || h != a.ID || made {
			t.Fatalf("Claim by b of a's indexed key = %s, made %v, %v; want a", h, made, err)
		}
		if h, made, err := ix.Claim(ctx(t), key, a.ID, now, always); err != nil || h != a.ID || made {
			t.Fatalf("Claim by a of its indexed key = %s, made %v, %v; want a, not made", h, made, err)
		}
		if id, _ := ix.Lookup(ctx(t), key); id != a.ID {
			t.Fatalf("a's own claim after Add hid the key: Lookup = %q", id)
		}
	})
	t.Run("ReleasedClaimIsFree", func(t *testing.T) {
		ix := newIndex(t)
		a, b := record(t), record(t)
		key, other := "one-bill:RELEASE-"+a.ID, "one-bill:KEPT-"+a.ID
		for _, k := range []string{key, other} {
			if h, made, err := ix.Claim(ctx(t), k, a.ID, now, never); err != nil || h != a.ID || !made {
				t.Fatalf("Claim of %s by a = %s, made %v, %v; want a, made", k, h, made, err)
			}
		}
		// Released as made: free for b at once. Of another time or id, or
		// indexed: kept.
		if err := ix.Release(ctx(t), key, a.ID, now); err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct {
			id string
			at time.Time
		}{{b.ID, now}, {a.ID, now.Add(time.Microsecond)}} { // (a microsecond apart: attempts of one document)
			if err := ix.Release(ctx(t), other, r.id, r.at); err != nil {
				t.Fatal(err)
			}
		}
		if h, made, err := ix.Claim(ctx(t), key, b.ID, now, never); err != nil || h != b.ID || !made {
			t.Fatalf("Claim by b of a released claim = %s, made %v, %v; want b, made", h, made, err)
		}
		if h, _, err := ix.Claim(ctx(t), other, b.ID, now, never); err != nil || h != a.ID {
			t.Fatalf("Claim by b of a's claim released by another id or time = %s, %v; want a", h, err)
		}
		b.Keys = []string{key}
		if err := ix.Add(ctx(t), b, nil); err != nil {
			t.Fatal(err)
		}
		if err := ix.Release(ctx(t), key, b.ID, now); err != nil {
			t.Fatal(err)
		}
		if id, err := ix.Lookup(ctx(t), key); err != nil || id != b.ID {
			t.Fatalf("Lookup of an indexed key released = %s, %v; want b", id, err)
		}
	})
	t.Run("RenewalAtTheSameTimeIsNotReleased", func(t *testing.T) {
		// Two attempts of one document that read one clock: the first
		// made the claim, the second renewed it; the first, failing,
		// releases its claim, and the second's stays.
		ix := newIndex(t)
		a, b := record(t), record(t)
		key := "one-bill:SAMETIME-" + a.ID
		if _, made, err := ix.Claim(ctx(t), key, a.ID, now, never); err != nil || !made {
			t.Fatalf("first claim: made %v, %v", made, err)
		}
		if _, made, err := ix.Claim(ctx(t), key, a.ID, now, never); err != nil || made {
			t.Fatalf("the renewal: made %v, %v; want renewed", made, err)
		}
		if err := ix.Release(ctx(t), key, a.ID, now); err != nil {
			t.Fatal(err)
		}
		if h, _, err := ix.Claim(ctx(t), key, b.ID, now, never); err != nil || h != a.ID {
			t.Fatalf("Claim by b after the first attempt's release = %s, %v; want a (the renewal holds it)", h, err)
		}
	})
	t.Run("StaleClaimGivesWay", func(t *testing.T) {
		ix := newIndex(t)
		a, b := record(t), record(t)
		key := "one-bill:STALE-" + a.ID
		if h, _, _ := ix.Claim(ctx(t), key, a.ID, now, never); h != a.ID {
			t.Fatalf("first claim = %s", h)
		}
		if h, made, err := ix.Claim(ctx(t), key, b.ID, now, always); err != nil || h != b.ID || !made {
			t.Fatalf("Claim of a stale claim = %s, made %v, %v; want b, made", h, made, err)
		}
		// The cut-short submission, indexed late, does not take the key back.
		b.Keys = []string{key}
		if err := ix.Add(ctx(t), b, nil); err != nil {
			t.Fatal(err)
		}
		a.Keys = []string{key}
		if err := ix.Add(ctx(t), a, nil); err != nil {
			t.Fatal(err)
		}
		if id, _ := ix.Lookup(ctx(t), key); id != b.ID {
			t.Fatalf("Lookup = %s, want b", id)
		}
	})
}

func itemIDs(items []exchange.Item) []string {
	var out []string
	for _, it := range items {
		if it.Record.ID == "" {
			out = append(out, exchange.PositionID(it.Pos)+" (not indexed)")
		} else {
			out = append(out, it.Record.ID)
		}
	}
	return out
}

// Parties runs the party-store cases against fresh stores.
func Parties(t *testing.T, newParties func(t *testing.T) exchange.Parties) {
	t.Run("CreateGetList", func(t *testing.T) {
		ps := newParties(t)
		p := exchange.Party{ID: "cq-mto", Name: "Chongqing MTO", Roles: []exchange.Role{exchange.RoleMTO}, Country: "CN", CreatedAt: time.Now().UTC().Truncate(time.Second)}
		if err := ps.CreateParty(ctx(t), p); err != nil {
			t.Fatal(err)
		}
		if err := ps.CreateParty(ctx(t), p); !errors.Is(err, exchange.ErrExists) {
			t.Fatalf("second CreateParty = %v, want ErrExists", err)
		}
		if err := ps.CreateParty(ctx(t), exchange.Party{ID: "a-bank", Name: "Bank", Roles: []exchange.Role{exchange.RoleBank}, Country: "SG"}); err != nil {
			t.Fatal(err)
		}
		got, err := ps.Party(ctx(t), "cq-mto")
		if err != nil || got.Name != p.Name || !slices.Equal(got.Roles, p.Roles) || !got.CreatedAt.Equal(p.CreatedAt) {
			t.Fatalf("Party = %+v, %v", got, err)
		}
		p.Disabled = true
		if err := ps.UpdateParty(ctx(t), p); err != nil {
			t.Fatal(err)
		}
		if got, _ := ps.Party(ctx(t), "cq-mto"); !got.Disabled {
			t.Fatal("UpdateParty did not store Disabled")
		}
		if err := ps.UpdateParty(ctx(t), exchange.Party{ID: "ghost"}); !errors.Is(err, exchange.ErrNotFound) {
			t.Fatalf("UpdateParty of unknown = %v, want ErrNotFound", err)
		}
		list, err := ps.ListParties(ctx(t))
		if err != nil || len(list) != 2 || list[0].ID != "a-bank" || list[1].ID != "cq-mto" {
			t.Fatalf("ListParties = %+v, %v", list, err)
		}
		if _, err := ps.Party(ctx(t), "ghost"); !errors.Is(err, exchange.ErrNotFound) {
			t.Fatalf("Party(ghost) = %v", err)
		}
	})
	t.Run("Keys", func(t *testing.T) {
		ps := newParties(t)
		plain, k, err := exchange.NewAPIKey("cq-mto", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := ps.PutKey(ctx(t), k); err != nil {
			t.Fatal(err)
		}
		id, secret, err := exchange.ParseKey(plain)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ps.Key(ctx(t), id)
		if err != nil || !got.Matches(secret) || got.Party != "cq-mto" {
			t.Fatalf("Key = %+v, %v", got, err)
		}
		got.Revoked = true
		if err := ps.PutKey(ctx(t), got); err != nil {
			t.Fatal(err)
		}
		if again, _ := ps.Key(ctx(t), id); !again.Revoked {
			t.Fatal("revocation not stored")
		}
		if _, err := ps.Key(ctx(t), "0000000000000000"); !errors.Is(err, exchange.ErrNotFound) {
			t.Fatalf("Key(unknown) = %v", err)
		}
	})
}

// Outbox runs the outbox cases against fresh outboxes from newOutbox.
func Outbox(t *testing.T, newOutbox func(t *testing.T) exchange.Outbox) {
	ids := func(ps []exchange.Pending) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.ID)
		}
		return out
	}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	t.Run("PendingOldestFirstBeforeATime", func(t *testing.T) {
		o := newOutbox(t)
		a, b, c := record(t).ID, record(t).ID, record(t).ID
		for _, m := range []struct {
			id string
			at time.Time
		}{{b, base.Add(2 * time.Second)}, {a, base.Add(time.Second)}, {c, base.Add(3 * time.Second)}} {
			if was, err := o.Mark(ctx(t), m.id, m.at); err != nil || was {
				t.Fatalf("Mark of a document not marked = %v, %v; want false", was, err)
			}
		}
		got, err := o.Pending(ctx(t), base.Add(3*time.Second), 10)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), []string{a, b}) {
			t.Fatalf("Pending before the third mark = %v, want [%s %s] (oldest first, the third excluded)", ids(got), a, b)
		}
		if !got[0].Since.Equal(base.Add(time.Second)) {
			t.Fatalf("Since = %v, want %v", got[0].Since, base.Add(time.Second))
		}
		if got, _ := o.Pending(ctx(t), base.Add(time.Hour), 2); !slices.Equal(ids(got), []string{a, b}) {
			t.Fatalf("Pending with limit 2 = %v, want [%s %s]", ids(got), a, b)
		}
	})
	t.Run("MarkAgainTakesTheLaterTime", func(t *testing.T) {
		o := newOutbox(t)
		a, b := record(t).ID, record(t).ID
		_, _ = o.Mark(ctx(t), a, base)
		_, _ = o.Mark(ctx(t), b, base.Add(time.Second))
		if was, err := o.Mark(ctx(t), a, base.Add(2*time.Second)); err != nil || !was {
			t.Fatalf("Mark of a marked document = %v, %v; want true", was, err)
		}
		got, err := o.Pending(ctx(t), base.Add(time.Hour), 10)
		if err != nil || !slices.Equal(ids(got), []string{b, a}) || !got[1].Since.Equal(base.Add(2*time.Second)) {
			t.Fatalf("Pending after marking %s again = %+v, %v; want [%s %s], the second since +2s", a, got, err, b, a)
		}
	})
	t.Run("UnmarkOnlyTheMarkSeen", func(t *testing.T) {
		o := newOutbox(t)
		a, b := record(t).ID, record(t).ID
		_, _ = o.Mark(ctx(t), a, base)
		_, _ = o.Mark(ctx(t), b, base)
		if err := o.Unmark(ctx(t), a, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if err := o.Unmark(ctx(t), record(t).ID, time.Time{}); err != nil {
			t.Fatalf("Unmark of an id never marked: %v", err)
		}
		got, err := o.Pending(ctx(t), base.Add(time.Hour), 10)
		if err != nil || !slices.Equal(ids(got), []string{b}) {
			t.Fatalf("Pending after Unmark = %v, %v; want [%s]", ids(got), err, b)
		}
		if err := o.Unmark(ctx(t), b, base.Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
		if got, _ := o.Pending(ctx(t), base.Add(time.Hour), 10); !slices.Equal(ids(got), []string{b}) {
			t.Fatalf("Pending after Unmark at another time = %v; want [%s] still marked", ids(got), b)
		}
		if err := o.Unmark(ctx(t), b, base); err != nil {
			t.Fatal(err)
		}
		if got, err := o.Pending(ctx(t), base.Add(time.Hour), 10); err != nil || len(got) != 0 {
			t.Fatalf("Pending with nothing marked = %v, %v", ids(got), err)
		}
	})
	t.Run("Marked", func(t *testing.T) {
		o := newOutbox(t)
		a, b := record(t).ID, record(t).ID
		_, _ = o.Mark(ctx(t), a, base)
		_, _ = o.Mark(ctx(t), b, base)
		_ = o.Unmark(ctx(t), b, base)
		if was, err := o.Mark(ctx(t), b, base); err != nil || was {
			t.Fatalf("Mark of an unmarked document = %v, %v; want false", was, err)
		}
		_ = o.Unmark(ctx(t), b, base)
		for id, want := range map[string]bool{a: true, b: false, record(t).ID: false} {
			if got, err := o.Marked(ctx(t), id); err != nil || got != want {
				t.Errorf("Marked(%s) = %v, %v; want %v", id, got, err, want)
			}
		}
	})
}

// Blobs runs the cases of exchange.Blobs against fresh stores.
func Blobs(t *testing.T, newBlobs func(t *testing.T) exchange.Blobs) {
	b := newBlobs(t)
	name := "segments/0a1b/" + fmt.Sprint(time.Now().UnixNano())
	if _, err := b.Blob(ctx(t), name); !errors.Is(err, exchange.ErrNotFound) {
		t.Fatalf("Blob of a name never written = %v; want ErrNotFound", err)
	}
	for _, data := range [][]byte{[]byte("first\n\x00bytes"), []byte("second, longer, replacing it"), {}} {
		if err := b.PutBlob(ctx(t), name, data); err != nil {
			t.Fatal(err)
		}
		if got, err := b.Blob(ctx(t), name); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Blob = %q, %v; want %q", got, err, data)
		}
	}
	if err := b.DeleteBlob(ctx(t), name); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Blob(ctx(t), name); !errors.Is(err, exchange.ErrNotFound) {
		t.Fatalf("Blob of a name deleted = %v; want ErrNotFound", err)
	}
	if err := b.DeleteBlob(ctx(t), name); err != nil {
		t.Fatalf("DeleteBlob of a name not there = %v; want nil", err)
	}
	for _, bad := range []string{"", "a//b", "../x", "a/./b", "A", "a/", "/a", `a\b`} {
		if err := b.PutBlob(ctx(t), bad, []byte("x")); err == nil {
			t.Fatalf("PutBlob(%q) took a name outside [a-z0-9-]/...", bad)
		}
		if _, err := b.Blob(ctx(t), bad); !errors.Is(err, exchange.ErrNotFound) {
			t.Fatalf("Blob(%q) = %v; want ErrNotFound", bad, err)
		}
	}
}
