package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// An index may keep the records of older documents only in the archive
// (Redis with --redis-record-ttl, so that what a document costs it stays
// small): it still lists them and holds their natural keys, Doc does not
// find them, and Page lists them with a zero Record. The service reads
// those from the archive, which holds the record the index was given (one
// of an older format is upgraded, as reindex upgrades it), and remembers
// the last ones it read (an archived record never changes).

// coldCacheBytes bounds the archived records kept in memory, as
// recordCost reckons them (somewhat more than they take): some 12,000
// records the size of the demo's (under 1 KB of JSON each), enough for the
// pages of the older shipments being looked at, or some 400 one bills of
// a thousand containers each.
const coldCacheBytes = 32 << 20

// coldReads bounds the archive reads of one page that run at once.
const coldReads = 16

// coldReadsInFlight bounds the archive reads of records running at once
// in the process, whatever the number of views asking (each bounded by
// coldReads): many views of older shipments at once cannot flood the
// archive.
const coldReadsInFlight = 64

// coldReadTimeout bounds one archive read of a record, which the callers
// asking for it at once share (it is not cancelled when the first leaves,
// only when the last does).
const coldReadTimeout = 30 * time.Second

// coldRecords are the records the service read from the archive.
type coldRecords struct {
	cache *byteLRU[string, Record]
	slots chan struct{} // the reads running (coldReadsInFlight)
	mu    sync.Mutex
	reads map[string]*coldRead // by id: callers asking at once share one read
}

// coldRead is one archive read of a record, shared by its waiters.
type coldRead struct {
	done    chan struct{} // closed once rec and err are set
	rec     Record
	err     error
	waiters int
	cancel  context.CancelFunc
}

func newColdRecords(inFlight, maxBytes int) *coldRecords {
	return &coldRecords{cache: newByteLRU[string, Record](maxBytes, cacheIdle), slots: make(chan struct{}, inFlight), reads: map[string]*coldRead{}}
}

// remember keeps a record read from the archive, reckoned by the length of
// its JSON as recordCost reckons one (marshalling it costs far less than
// the archive read did).
func (c *coldRecords) remember(id string, rec Record) {
	raw, err := json.Marshal(rec)
	if err != nil { // (not for a record decoded from JSON)
		return
	}
	c.cache.add(id, rec, recordCost(len(raw)))
}

// readArchived reads a record from the archive once for all the callers
// asking for it at once, each given its own copy; at most
// coldReadsInFlight run at once. A caller whose ctx ends stops waiting;
// the read goes on for the others, and stops (freeing its slot) when none
// is left.
func (s *Service) readArchived(ctx context.Context, id string) (Record, error) {
	c := s.cold
	c.mu.Lock()
	r, ok := c.reads[id]
	if !ok {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), coldReadTimeout)
		r = &coldRead{done: make(chan struct{}), cancel: cancel}
		c.reads[id] = r
		go func() {
			defer cancel()
			r.rec, r.err = c.read(rctx, s.Archive, id)
			if r.err == nil && r.rec.Format >= RecordFormat { // (not one upgraded: see archivedRecord)
				c.remember(id, r.rec) // remembered once, whoever waits; nobody changes r.rec (each waiter gets a copy)
			}
			c.mu.Lock()
			if c.reads[id] == r {
				delete(c.reads, id)
			}
			c.mu.Unlock()
			close(r.done)
		}()
	}
	r.waiters++
	c.mu.Unlock()
	if s.Failpoint != nil {
		s.Failpoint("cold-wait")
	}
	select {
	case <-r.done:
		if r.err != nil {
			return Record{}, r.err
		}
		return r.rec.clone(), nil
	case <-ctx.Done():
		c.mu.Lock()
		if r.waiters--; r.waiters == 0 {
			r.cancel() // nobody waits for it
			if c.reads[id] == r {
				delete(c.reads, id) // a caller from now on starts another
			}
		}
		c.mu.Unlock()
		return Record{}, ctx.Err()
	}
}

// read reads a record once a slot is free.
func (c *coldRecords) read(ctx context.Context, a Archive, id string) (Record, error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return Record{}, ctx.Err()
	}
	defer func() { <-c.slots }()
	return a.Record(ctx, id)
}

// coldReplay finds a submission seen before whose record the index no
// longer holds (a ForgetfulIndex), by the natural keys it holds: its own
// numbers, or the revision it amends; and an amendment of a one bill (whose
// AMEND goes to the title before the archive write, and could not be taken
// back: an Idempotency-Key used again, say) by its id in the archive. Found,
// it is read from the archive, before anything is claimed or written for
// it as a new document would be (a title amended again, a number its
// amendment took since). Another document without a natural key (a customs
// response) is found by the archive's conditional write instead. Without
// such an index only a one bill's amendment is looked up (in the archive).
func (s *Service) coldReplay(ctx context.Context, rt route, f map[string]any, rec Record, amends string) (Record, bool, error) {
	// A one bill's amendment is looked up in the archive whatever the
	// index: under its id (an Idempotency-Key used again) another document
	// may be archived but not yet indexed, and its AMEND would name that one.
	held := amends != "" && rec.Type == TypeOneBill
	if !s.forgetsRecords() && !held {
		return Record{}, false, nil
	}
	if !held {
		var err error
		if held, err = s.holdsItsKeys(ctx, rt, f, rec, amends); err != nil {
			return Record{}, false, err
		}
	}
	if !held {
		return Record{}, false, nil
	}
	prev, err := s.archivedRecord(ctx, rec.ID)
	if errors.Is(err, ErrNotFound) { // not archived: a new amendment, or an attempt that never got that far
		return Record{}, false, nil
	} else if err != nil {
		return Record{}, false, fmt.Errorf("read archived record: %w", err)
	}
	return prev, true, nil
}

// holdsItsKeys reports whether the index holds one of a submission's
// natural keys (or the revision slot of what it amends) under its id.
func (s *Service) holdsItsKeys(ctx context.Context, rt route, f map[string]any, rec Record, amends string) (bool, error) {
	keys := []string{}
	if amends != "" {
		keys = append(keys, revisionKey(amends))
	}
	for _, k := range rt.keys {
		for _, v := range values(f, k.path) {
			keys = append(keys, k.of(rec.Sender, v))
		}
	}
	for _, k := range keys {
		holder, err := s.Index.Lookup(ctx, k)
		if err == nil && holder == rec.ID {
			return true, nil
		} else if err != nil && !errors.Is(err, ErrNotFound) {
			return false, fmt.Errorf("look up %s: %w", k, err)
		}
	}
	return false, nil
}

// forgetsRecords reports whether the index keeps records only a while.
func (s *Service) forgetsRecords() bool {
	ix, ok := s.Index.(ForgetfulIndex)
	return ok && ix.KeepsRecords() > 0
}

// record returns a document's record from the index, or from the archive
// when the index does not hold it; ErrNotFound when neither does.
func (s *Service) record(ctx context.Context, id string) (Record, error) {
	rec, err := s.Index.Doc(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return s.archivedRecord(ctx, id)
	}
	return rec, err
}

// archivedRecord reads a record from the archive as the index would hold
// it: a record of an older format is upgraded, as reindex does (and not
// remembered: what an upgrade works out depends on the index as it is),
// but for a one bill not while another is being upgraded (upgrading reads
// the shipment's graph, which may list it: read as archived there, it
// cannot recurse; a one bill's upgrade reads nothing).
func (s *Service) archivedRecord(ctx context.Context, id string) (Record, error) {
	if rec, ok := s.cold.cache.get(id); ok {
		return rec.clone(), nil
	}
	rec, err := s.readArchived(ctx, id)
	if err != nil {
		return Record{}, err
	}
	if rec.Format < RecordFormat {
		if upgrading(ctx) && rec.Type != TypeOneBill { // (a one bill's upgrade reads no graph)
			return rec, nil
		}
		up, err := s.upgrade(ctx, rec)
		if err != nil {
			return Record{}, fmt.Errorf("upgrade %s: %w", id, err)
		}
		return up, nil
	}
	return rec, nil // (remembered by readArchived)
}

type upgradingKey struct{}

// upgrading reports whether ctx is that of an upgrade (see archivedRecord).
func upgrading(ctx context.Context) bool { return ctx.Value(upgradingKey{}) != nil }

// page is Index.Page with every record: those the index does not hold
// are read from the archive.
func (s *Service) page(ctx context.Context, list, after string, limit int, desc bool) ([]Item, error) {
	out, err := s.pages(ctx, PageQuery{List: list, After: after, Limit: limit, Desc: desc})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// pages reads several pages at once where the index can (Pager), with
// every record: those the index does not hold are read from the archive,
// all the pages' at once. An entry whose record the archive does not
// hold either (listed by an attempt that never archived) is left out, and
// its page filled up from the rest of the list.
func (s *Service) pages(ctx context.Context, qs ...PageQuery) ([][]Item, error) {
	out, err := pages(ctx, s.Index, qs...)
	if err != nil {
		return nil, err
	}
	var cold []*Item
	for _, items := range out {
		for i := range items {
			if items[i].Record.ID == "" {
				cold = append(cold, &items[i])
			}
		}
	}
	if len(cold) == 0 {
		return out, nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(coldReads)
	for _, it := range cold {
		g.Go(func() error {
			rec, err := s.archivedRecord(gctx, PositionID(it.Pos))
			if errors.Is(err, ErrNotFound) {
				return nil
			} else if err != nil {
				return fmt.Errorf("read archived record: %w", err)
			}
			it.Record = rec
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, q := range qs {
		items := out[i]
		kept := items[:0:len(items)]
		for _, it := range items {
			if it.Record.ID != "" {
				kept = append(kept, it)
			}
		}
		if len(kept) < len(items) && len(items) == q.Limit { // full before: fill up
			more, err := s.page(ctx, q.List, items[len(items)-1].Pos, q.Limit-len(kept), q.Desc)
			if err != nil {
				return nil, err
			}
			kept = append(kept, more...)
		}
		out[i] = kept
	}
	return out, nil
}
