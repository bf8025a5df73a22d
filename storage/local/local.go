// Package local is Corridor's embedded backend: the archive as files
// (written to a temporary file, fsynced, then linked into place, never
// overwritten) and queues, indexes and parties in a bbolt database, so the
// gateway runs on one machine with nothing installed.
package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/landsea/corridor/exchange"
)

// Store is the embedded backend; it implements every port of exchange.
type Store struct {
	// Dir is the data folder.
	Dir string
	// VisibilityTimeout is how long a pulled message stays invisible before
	// it is delivered again unless acked.
	VisibilityTimeout time.Duration
	// NoSync skips the database's fsync on commit: for seeding benchmarks
	// only, since a crash then loses what was committed last.
	NoSync bool

	db      *bolt.DB
	mu      sync.Mutex
	puts    [64]sync.Mutex // Put's, by id: a document's two files are written under one
	waiters map[string]chan struct{}
	leases  map[string]lease
	now     func() time.Time
	records *exchange.RecordCache // the index's records, decoded
}

var (
	_ exchange.Archive = (*Store)(nil)
	_ exchange.Queue   = (*Store)(nil)
	_ exchange.Index   = (*Store)(nil)
	_ exchange.Parties = (*Store)(nil)
)

var (
	bParties = []byte("parties")
	bKeys    = []byte("keys")
	bDocs    = []byte("docs")
	bLists   = []byte("lists") // list name -> position -> nothing
	bNatural = []byte("natural")
	bInbox   = []byte("inbox")
	bMsgs    = []byte("msgs")      // seq -> message
	bByDoc   = []byte("byDoc")     // document id -> seq, while pending
	bSeen    = []byte("delivered") // document id -> seq, forever: enqueue is idempotent
	bFlight  = []byte("inflight")  // seq -> visible-again time
)

// New returns a store for dir with defaults set; call Open before use.
func New(dir string) *Store {
	return &Store{Dir: dir, VisibilityTimeout: 30 * time.Second, waiters: map[string]chan struct{}{}, now: time.Now,
		records: exchange.NewRecordCache(recordCacheBytes, nil)}
}

// Open creates the folders and opens the database.
func (s *Store) Open() error {
	if err := os.MkdirAll(filepath.Join(s.Dir, "archive"), 0o750); err != nil {
		return fmt.Errorf("create data folder: %w", err)
	}
	db, err := bolt.Open(filepath.Join(s.Dir, "corridor.db"), 0o600, &bolt.Options{Timeout: 3 * time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("open database: %s is in use by another process (a running gateway?); stop it, or use the admin API of the running gateway", s.Dir)
	}
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bParties, bKeys, bDocs, bLists, bNatural, bInbox, bSubs, bPush, bPushLog, bOutbox, bOutboxAt} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return fmt.Errorf("create buckets: %w", err)
	}
	db.NoSync = s.NoSync
	s.db = db
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	if s.db == nil {
		return nil
	}
	return s.db.Close()
}

// Ping reports whether the store is open.
func (s *Store) Ping(context.Context) error {
	if s.db == nil {
		return fmt.Errorf("local store closed: %w", exchange.ErrUnavailable)
	}
	return nil
}

// ---- archive ----

func (s *Store) docPath(id, suffix string) string {
	return filepath.Join(s.Dir, "archive", id[:2], id+suffix)
}

// Put writes the body, then the record, each write-once.
func (s *Store) Put(ctx context.Context, rec exchange.Record, body []byte) error {
	if len(rec.ID) < 2 {
		return fmt.Errorf("bad document id %q", rec.ID)
	}
	if err := os.MkdirAll(filepath.Dir(s.docPath(rec.ID, "")), 0o750); err != nil {
		return err
	}
	h := fnv.New32a()
	h.Write([]byte(rec.ID))
	mu := &s.puts[h.Sum32()%uint32(len(s.puts))]
	mu.Lock()
	defer mu.Unlock()
	err := writeFile(s.docPath(rec.ID, ".body"), body, false)
	if errors.Is(err, fs.ErrExist) {
		// An earlier attempt got this far; it goes on with the same bytes.
		// Other bytes without a record are a write cut short (the gateway
		// died between the two files; under the lock no Put is between
		// them): that document was never archived, nor acknowledged, and
		// this one takes its place. With its record, it is another.
		old, rerr := os.ReadFile(s.docPath(rec.ID, ".body"))
		if rerr != nil {
			return rerr
		}
		if !bytes.Equal(old, body) {
			if _, err := os.Lstat(s.docPath(rec.ID, ".record.json")); err == nil {
				return exchange.ErrExists
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := writeFile(s.docPath(rec.ID, ".body"), body, true); err != nil {
				return fmt.Errorf("write document: %w", err)
			}
		}
	} else if err != nil {
		return fmt.Errorf("write document: %w", err)
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := writeFile(s.docPath(rec.ID, ".record.json"), raw, false); errors.Is(err, fs.ErrExist) {
		return exchange.ErrExists
	} else if err != nil {
		return fmt.Errorf("write record: %w", err)
	}
	return nil
}

// writeFile writes data to a temporary file, fsyncs it and links it to
// path, which fails if path exists (a document is never overwritten), or
// with replace renames it over path.
func writeFile(path string, data []byte, replace bool) error {
	if _, err := os.Lstat(path); err == nil && !replace {
		return fs.ErrExist
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	put := os.Link
	if replace {
		put = os.Rename
	}
	if err := put(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fs.ErrExist
		}
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Body returns a document's exact bytes.
func (s *Store) Body(ctx context.Context, id string) ([]byte, error) {
	return s.readDoc(id, ".body")
}

// readDoc reads one of a document's files; an id that could leave the
// archive folder names nothing.
func (s *Store) readDoc(id, suffix string) ([]byte, error) {
	if len(id) < 2 || strings.ContainsAny(id, `/\.`) {
		return nil, exchange.ErrNotFound
	}
	data, err := os.ReadFile(s.docPath(id, suffix))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, exchange.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	return data, nil
}

// Record returns a document's archived record.
func (s *Store) Record(ctx context.Context, id string) (exchange.Record, error) {
	var rec exchange.Record
	raw, err := s.readDoc(id, ".record.json")
	if err != nil {
		return rec, err
	}
	return rec, json.Unmarshal(raw, &rec)
}

// Walk calls fn for every archived record.
func (s *Store) Walk(ctx context.Context, fn func(exchange.Record) error) error {
	return filepath.WalkDir(filepath.Join(s.Dir, "archive"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".record.json") {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := s.Record(ctx, strings.TrimSuffix(filepath.Base(p), ".record.json"))
		if err != nil {
			return err
		}
		return fn(rec)
	})
}

// ---- blobs ----

var _ exchange.Blobs = (*Store)(nil)

func (s *Store) blobPath(name string) (string, error) {
	if !exchange.BlobName(name) {
		return "", fmt.Errorf("blob name %q: %w", name, exchange.ErrNotFound)
	}
	return filepath.Join(s.Dir, "blobs", filepath.FromSlash(name)), nil
}

// PutBlob writes an object whole (a file renamed into place).
func (s *Store) PutBlob(ctx context.Context, name string, data []byte) error {
	path, err := s.blobPath(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return writeFile(path, data, true)
}

// Blob reads an object.
func (s *Store) Blob(ctx context.Context, name string) ([]byte, error) {
	path, err := s.blobPath(name)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, exchange.ErrNotFound
	}
	return data, err
}

// DeleteBlob removes an object.
func (s *Store) DeleteBlob(ctx context.Context, name string) error {
	path, err := s.blobPath(name)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// ---- index ----

// Add indexes a record by id, in its lists and under its natural keys.
func (s *Store) Add(ctx context.Context, rec exchange.Record, entries []exchange.Entry) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bDocs).Put([]byte(rec.ID), raw); err != nil {
			return err
		}
		for _, e := range entries {
			b, err := tx.Bucket(bLists).CreateBucketIfNotExists([]byte(e.List))
			if err != nil {
				return err
			}
			if err := b.Put([]byte(e.Pos), []byte{}); err != nil {
				return err
			}
		}
		nat := tx.Bucket(bNatural)
		for _, k := range rec.Keys {
			// Free, only claimed, or held by the revision this one amends.
			if _, pending, holder := parseClaim(nat.Get([]byte(k))); holder == "" || pending || (rec.PreviousID != "" && holder == rec.PreviousID) {
				if err := nat.Put([]byte(k), []byte(rec.ID)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// A natural key's value is the holder's id once indexed, or
// "~<id>@<unix nanos>" while only claimed.
func parseClaim(v []byte) (at time.Time, pending bool, holder string) {
	s := string(v)
	rest, ok := strings.CutPrefix(s, "~")
	if !ok {
		return time.Time{}, false, s
	}
	id, nanos, _ := strings.Cut(rest, "@")
	n, _ := strconv.ParseInt(nanos, 10, 64)
	return time.Unix(0, n), true, id
}

// Claim reserves a natural key for id.
func (s *Store) Claim(ctx context.Context, key, id string, now, staleBefore time.Time) (string, bool, error) {
	var holder string
	var made bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		nat := tx.Bucket(bNatural)
		at, pending, h := parseClaim(nat.Get([]byte(key)))
		if h != "" && h != id && !(pending && at.Before(staleBefore)) {
			holder = h
			return nil
		}
		holder = id
		if h == id && !pending {
			return nil
		}
		made = h != id // (id's own claim is renewed)
		claim := claimOf(id, now)
		if claim == string(nat.Get([]byte(key))) { // a renewal never writes the value it found (see Release)
			claim = claimOf(id, now.Add(time.Nanosecond))
		}
		return nat.Put([]byte(key), []byte(claim))
	})
	return holder, made, err
}

// Release implements exchange.Index.
func (s *Store) Release(ctx context.Context, key, id string, now time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		nat := tx.Bucket(bNatural)
		if string(nat.Get([]byte(key))) != claimOf(id, now) {
			return nil
		}
		return nat.Delete([]byte(key))
	})
}

// claimOf is the value of a key claimed by id at now.
func claimOf(id string, now time.Time) string {
	return "~" + id + "@" + strconv.FormatInt(now.UnixNano(), 10)
}

// recordCacheBytes bounds the decoded records kept, as
// exchange.RecordCache reckons them (somewhat more than they take): some
// 10,000 records the size of the demo's, enough for the graphs of the
// shipments being written to, or some 300 one bills of a thousand
// containers each.
const recordCacheBytes = 32 << 20

// getDoc reads an indexed record through a cursor of the docs bucket,
// which a page reuses for all its records (in a read-only transaction,
// each Bucket and each Get would open and allocate their own).
func (s *Store) getDoc(docs *bolt.Cursor, id string) (exchange.Record, error) {
	k, raw := docs.Seek([]byte(id))
	if raw == nil || string(k) != id {
		return exchange.Record{}, exchange.ErrNotFound
	}
	return s.records.Decode(raw)
}

// Page returns a page of a list with its records.
func (s *Store) Page(ctx context.Context, list, after string, limit int, desc bool) ([]exchange.Item, error) {
	var out []exchange.Item
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bLists).Bucket([]byte(list))
		if b == nil {
			return nil
		}
		c, docs := b.Cursor(), tx.Bucket(bDocs).Cursor()
		var k []byte
		switch {
		case !desc && after == "":
			k, _ = c.First()
		case !desc:
			if k, _ = c.Seek([]byte(after)); k != nil && string(k) == after {
				k, _ = c.Next()
			}
		case after == "":
			k, _ = c.Last()
		default: // the last key before after
			if k, _ = c.Seek([]byte(after)); k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		}
		for ; k != nil && len(out) < limit; k = step(c, desc) {
			rec, err := s.getDoc(docs, exchange.PositionID(string(k)))
			if err != nil && !errors.Is(err, exchange.ErrNotFound) {
				return err
			}
			out = append(out, exchange.Item{Pos: string(k), Record: rec}) // zero if not indexed
		}
		return nil
	})
	return out, err
}

func step(c *bolt.Cursor, desc bool) []byte {
	if desc {
		k, _ := c.Prev()
		return k
	}
	k, _ := c.Next()
	return k
}

// Lookup returns the document holding a natural key.
func (s *Store) Lookup(ctx context.Context, key string) (string, error) {
	return exchange.IndexedHolder(s.Holder(ctx, key))
}

// Holder implements exchange.Index.
func (s *Store) Holder(ctx context.Context, key string) (string, time.Time, error) {
	var id string
	var since time.Time
	err := s.db.View(func(tx *bolt.Tx) error {
		at, pending, holder := parseClaim(tx.Bucket(bNatural).Get([]byte(key)))
		if holder == "" {
			return exchange.ErrNotFound
		}
		if id = holder; pending {
			since = at
		}
		return nil
	})
	return id, since, err
}

// ---- parties ----

// CreateParty stores a new party.
func (s *Store) CreateParty(ctx context.Context, p exchange.Party) error {
	return s.putJSON(bParties, p.ID, p, true)
}

// UpdateParty replaces a stored party.
func (s *Store) UpdateParty(ctx context.Context, p exchange.Party) error {
	if _, err := s.Party(ctx, p.ID); err != nil {
		return err
	}
	return s.putJSON(bParties, p.ID, p, false)
}

// Party returns a party.
func (s *Store) Party(ctx context.Context, id string) (exchange.Party, error) {
	var p exchange.Party
	return p, s.getJSON(bParties, id, &p)
}

// ListParties returns every party, by id (bolt keeps keys in byte order).
func (s *Store) ListParties(ctx context.Context) ([]exchange.Party, error) {
	return allJSON[exchange.Party](s, bParties)
}

// PutKey stores a key record.
func (s *Store) PutKey(ctx context.Context, k exchange.APIKey) error {
	return s.putJSON(bKeys, k.ID, k, false)
}

// Key returns a key record.
func (s *Store) Key(ctx context.Context, id string) (exchange.APIKey, error) {
	var k exchange.APIKey
	return k, s.getJSON(bKeys, id, &k)
}

func (s *Store) putJSON(bucket []byte, key string, v any, create bool) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if create && b.Get([]byte(key)) != nil {
			return exchange.ErrExists
		}
		return b.Put([]byte(key), raw)
	})
}

// allJSON decodes every value of a bucket, in key order.
func allJSON[T any](s *Store, bucket []byte) ([]T, error) {
	var out []T
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var x T
			if err := json.Unmarshal(v, &x); err != nil {
				return err
			}
			out = append(out, x)
			return nil
		})
	})
	return out, err
}

func (s *Store) getJSON(bucket []byte, key string, v any) error {
	return s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucket).Get([]byte(key))
		if raw == nil {
			return exchange.ErrNotFound
		}
		return json.Unmarshal(raw, v)
	})
}

// Doc returns an indexed record.
func (s *Store) Doc(ctx context.Context, id string) (exchange.Record, error) {
	var rec exchange.Record
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		rec, err = s.getDoc(tx.Bucket(bDocs).Cursor(), id)
		return err
	})
	return rec, err
}

// Contains reports whether a list holds an entry at pos.
func (s *Store) Contains(ctx context.Context, list, pos string) (bool, error) {
	var in bool
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bLists).Bucket([]byte(list)); b != nil {
			in = b.Get([]byte(pos)) != nil
		}
		return nil
	})
	return in, err
}
