package exchange

import (
	"context"
	"fmt"
	"hash/maphash"
	"time"
)

// SealTitleForTest signs an entry with s, so tests can forge a chain
// signed by another key.
func SealTitleForTest(s *Signer, e TitleEntry) TitleEntry {
	s.sealTitle(&e)
	return e
}

// CloneRecordForTest is what RecordCache hands out for a cached record.
func CloneRecordForTest(r Record) Record { return r.clone() }

// ForgetColdRecordsForTest empties the records read from the archive and
// bounds the reads running at once to inFlight.
func (s *Service) ForgetColdRecordsForTest(inFlight int) {
	s.cold = newColdRecords(inFlight, coldCacheBytes)
}

// RecordForTest is how views read a record: from the index, else the archive.
func (s *Service) RecordForTest(ctx context.Context, id string) (Record, error) {
	return s.record(ctx, id)
}

// ReleaseTimeout bounds releasing a refused submission's claims.
const ReleaseTimeout = releaseTimeout

// RecordCostForTest is what a record of n bytes of JSON is reckoned to take.
func RecordCostForTest(n int) int { return recordCost(n) }

// RecordCacheUsageForTest returns the records c holds and the bytes they
// are reckoned to take.
func RecordCacheUsageForTest(c *RecordCache) (records, bytes int) { return c.lru.usage() }

// RecordCacheHoldsForTest reports whether c holds the record stored as raw,
// leaving what it holds as it is.
func RecordCacheHoldsForTest(c *RecordCache, raw []byte) bool {
	h := maphash.Bytes(c.seed, raw)
	c.lru.mu.Lock()
	defer c.lru.mu.Unlock()
	e, ok := c.lru.lru.Peek(h)
	return ok && e.v.raw == string(raw)
}

// ByteLRUForTest is the cache under RecordCache and the cold records,
// holding strings by string.
type ByteLRUForTest struct{ c *byteLRU[string, string] }

// NewByteLRUForTest returns a cache of up to budget bytes, each entry
// kept while used at least every CacheIdle, on the clock now.
func NewByteLRUForTest(budget int, now func() time.Time) ByteLRUForTest {
	c := newByteLRU[string, string](budget, cacheIdle)
	c.now = now
	return ByteLRUForTest{c}
}

// CacheIdle is how long the record caches keep a record nobody reads.
const CacheIdle = cacheIdle

// Add, Get and Holds are the cache's add, get and holds.
func (l ByteLRUForTest) Add(k, v string, size int)   { l.c.add(k, v, size) }
func (l ByteLRUForTest) Get(k string) (string, bool) { return l.c.get(k) }
func (l ByteLRUForTest) Holds(k string) bool         { return l.c.holds(k) }

// Usage returns the entries held and their sizes' sum, and an error if
// that sum is not the one the cache keeps.
func (l ByteLRUForTest) Usage() (entries, bytes int, err error) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	l.c.expire(l.c.now())
	sum := 0
	for _, e := range l.c.lru.Values() {
		sum += e.size
	}
	if sum != l.c.bytes {
		err = fmt.Errorf("the cache counts %d bytes; its entries' sizes add up to %d", l.c.bytes, sum)
	}
	return l.c.lru.Len(), l.c.bytes, err
}

// BoundColdRecordsForTest empties the records read from the archive and
// keeps up to maxBytes of them from now on.
func (s *Service) BoundColdRecordsForTest(maxBytes int) {
	s.cold = newColdRecords(coldReadsInFlight, maxBytes)
}

// ColdRecordsUsageForTest returns the records read from the archive that
// are kept, and the bytes they are reckoned to take.
func (s *Service) ColdRecordsUsageForTest() (records, bytes int) { return s.cold.cache.usage() }

// ArchivedRecordForTest reads a record as views read one the index does
// not hold.
func (s *Service) ArchivedRecordForTest(ctx context.Context, id string) (Record, error) {
	return s.archivedRecord(ctx, id)
}
