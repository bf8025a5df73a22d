package exchange

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Errors that backends return, and callers branch on.
var (
	// ErrNotFound: no such document, party, key or index entry.
	ErrNotFound = errors.New("not found")
	// ErrExists: a write-once item is already there; nothing was changed.
	ErrExists = errors.New("already exists")
	// ErrUnavailable wraps a backend that cannot be reached; the request may
	// be retried and nothing acknowledged was half-written.
	ErrUnavailable = errors.New("backend unavailable")
)

// Archive is the ledger: the exact bytes of every document and its record,
// write-once.
type Archive interface {
	// Put stores body and its record under rec.ID. If a document with that
	// id is archived already, it returns ErrExists and changes nothing.
	Put(ctx context.Context, rec Record, body []byte) error
	// Body returns a document's exact bytes, or ErrNotFound.
	Body(ctx context.Context, id string) ([]byte, error)
	// Record returns a document's record, or ErrNotFound.
	Record(ctx context.Context, id string) (Record, error)
	// Walk calls fn for every archived record, in no set order, until fn
	// returns an error.
	Walk(ctx context.Context, fn func(Record) error) error
}

// Blobs keeps objects beside the archive that can be made again from it:
// an index moves the older entries of its longest lists there (redis,
// segments.go). Names are slash-separated [a-z0-9-]; an object is
// written whole, replacing one of its name.
type Blobs interface {
	PutBlob(ctx context.Context, name string, data []byte) error
	// Blob returns an object's bytes, or ErrNotFound.
	Blob(ctx context.Context, name string) ([]byte, error)
	// DeleteBlob removes an object; one not there is no error.
	DeleteBlob(ctx context.Context, name string) error
}

// BlobName reports whether name is one Blobs take: non-empty parts of
// [a-z0-9-], joined by "/".
func BlobName(name string) bool {
	for part := range strings.SplitSeq(name, "/") {
		if part == "" || strings.Trim(part, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return false
		}
	}
	return true
}

// Queue holds each party's inbox.
type Queue interface {
	// Enqueue adds a message to the inbox of each party. It is idempotent:
	// a document already enqueued for a party (acked or not) is not added
	// to that party's inbox again (by a ForgetfulQueue, while it remembers).
	// A message without ReceivedAt is refused with an error.
	Enqueue(ctx context.Context, m Message, parties ...string) error
	// Pull returns up to limit messages for the party, oldest first: new
	// ones and those delivered before but not acked within the visibility
	// timeout. When there are none it waits up to wait for one.
	Pull(ctx context.Context, party string, limit int, wait time.Duration) ([]Message, error)
	// Ack removes the party's messages of these document ids; it returns
	// how many were pending. Unknown ids are ignored.
	Ack(ctx context.Context, party string, documentIDs []string) (int, error)
}

// A ForgetfulQueue may forget an acked message once ForgetsAfter has
// passed since its document was received, by the gateway's clock (so its
// memory does not grow with every document ever delivered); enqueued again
// after that, a document may be delivered again. Until then Enqueue is
// idempotent, acked or not, and a message not acked is never added twice.
type ForgetfulQueue interface {
	Queue
	ForgetsAfter() time.Duration
}

// Index finds documents by id, natural key and list. A list is a named,
// ordered set of entries (a shipment's documents, its events, the
// shipments a party takes part in, ...); exchange decides which lists a
// record is filed in, so every backend only keeps sorted strings.
type Index interface {
	// Add indexes a record: by id, in each of the entries' lists, and
	// under each natural key that no other indexed document holds (a
	// pending claim gives way, and so does the revision the record
	// amends, rec.PreviousID). It is idempotent, in any order: a revision
	// indexed after its amendment does not take its key back.
	Add(ctx context.Context, rec Record, entries []Entry) error
	// Claim reserves a natural key for a document about to be archived, so
	// two documents cannot take the same bill or declaration number. It
	// returns the holder: id itself when the key is free, held by id, or
	// pending for another document since before staleBefore (an attempt
	// that never finished); else the other document's id. A pending claim
	// is not seen by Lookup until Add confirms it. made reports that this
	// call claimed the key for id anew (it was free, or another's stale
	// claim); a claim of id already pending is renewed (its time is now),
	// and not made.
	Claim(ctx context.Context, key, id string, now, staleBefore time.Time) (holder string, made bool, err error)
	// Release gives up the claim of key that id made at now, for a
	// submission refused before anything of it was archived: the key is
	// free at once, not only once the claim is stale. A key indexed, or
	// claimed since (by any document), is left as it is. Only a claim the
	// caller made may be released: one it renewed may be another attempt's.
	Release(ctx context.Context, key, id string, now time.Time) error
	// Doc returns an indexed record, or ErrNotFound (also for one kept
	// only in the archive).
	Doc(ctx context.Context, id string) (Record, error)
	// Page returns up to limit entries of a list with their records, in
	// ascending order of position (descending when desc), starting after
	// the position after ("" for the start). An entry whose record is
	// not indexed (kept only in the archive, or lost with the index's
	// data) comes with a zero Record: the service reads it from the
	// archive. A page is short only at the end of the list. An unknown
	// list is empty.
	Page(ctx context.Context, list, after string, limit int, desc bool) ([]Item, error)
	// Lookup returns the id of the indexed document that holds a natural
	// key, or ErrNotFound (also while the key is only claimed).
	Lookup(ctx context.Context, key string) (string, error)
	// Contains reports whether a list holds an entry at a position.
	Contains(ctx context.Context, list, pos string) (bool, error)
	// Holder returns the document holding a natural key, indexed (since
	// zero) or only claimed (since: the claim's time, never zero; one that
	// does not read is the Unix epoch, stale as Claim takes it), or
	// ErrNotFound.
	Holder(ctx context.Context, key string) (id string, since time.Time, err error)
}

// IndexedHolder is Lookup from Holder's answer: the holder of a key
// indexed, ErrNotFound for one only claimed. (Both backends answer Lookup
// so.)
func IndexedHolder(id string, since time.Time, err error) (string, error) {
	if err == nil && !since.IsZero() {
		return "", ErrNotFound
	}
	return id, err
}

// A ForgetfulIndex keeps a document's record only KeepsRecords after it
// was received (0: as long as it keeps its data); then Doc does not find
// it, and Page lists it with a zero record. Its list entries and natural
// keys stay.
type ForgetfulIndex interface {
	Index
	KeepsRecords() time.Duration
}

// PageQuery is one page of a list, as Index.Page takes it.
type PageQuery struct {
	List, After string
	Limit       int
	Desc        bool
}

// Pager is implemented by an Index that reads several pages at once in
// fewer round trips than a Page each (reading a shipment takes two). Its
// pages are those Page would return, in the order asked.
type Pager interface {
	Pages(ctx context.Context, qs ...PageQuery) ([][]Item, error)
}

// pages reads several pages of ix, at once where it can.
func pages(ctx context.Context, ix Index, qs ...PageQuery) ([][]Item, error) {
	if p, ok := ix.(Pager); ok {
		return p.Pages(ctx, qs...)
	}
	out := make([][]Item, len(qs))
	for i, q := range qs {
		items, err := ix.Page(ctx, q.List, q.After, q.Limit, q.Desc)
		if err != nil {
			return nil, err
		}
		out[i] = items
	}
	return out, nil
}

// Entry files a document in a list at a position (see Position).
type Entry struct {
	List string
	Pos  string
}

// Position orders entries by time, then by id: fixed-width hex of the
// Unix microseconds, then the id. Backends compare positions as bytes.
func Position(at time.Time, id string) string {
	us := max(at.UnixMicro(), 0)
	return fmt.Sprintf("%016x", us) + id
}

// PositionTime returns the time of a position (the Unix epoch for one
// that does not read).
func PositionTime(pos string) time.Time {
	if len(pos) < 16 {
		return time.UnixMicro(0)
	}
	us, err := strconv.ParseInt(pos[:16], 16, 64)
	if err != nil {
		return time.UnixMicro(0)
	}
	return time.UnixMicro(us)
}

// PositionID returns the document id of a position.
func PositionID(pos string) string {
	if len(pos) < 16 {
		return ""
	}
	return pos[16:]
}

// Item is a listed record with its position, from which the next page starts.
type Item struct {
	Pos    string
	Record Record
}

// Parties stores the corridor's parties and their API keys (as hashes).
type Parties interface {
	// CreateParty adds a party, or returns ErrExists.
	CreateParty(ctx context.Context, p Party) error
	// UpdateParty replaces a party's stored fields, or returns ErrNotFound.
	UpdateParty(ctx context.Context, p Party) error
	// Party returns a party, or ErrNotFound.
	Party(ctx context.Context, id string) (Party, error)
	// ListParties returns every party, sorted by id.
	ListParties(ctx context.Context) ([]Party, error)
	// PutKey stores a key record (new or revoked).
	PutKey(ctx context.Context, k APIKey) error
	// Key returns a key record by its id, or ErrNotFound.
	Key(ctx context.Context, id string) (APIKey, error)
}

// Pinger is implemented by backends that can tell whether they are reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}
