package exchange

import (
	"math"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// byteLRU is a least-recently-used cache bounded by the bytes its entries
// are reckoned to hold rather than by their number: records range from a
// few hundred bytes to tens of KB, so a bound by count let memory grow
// with the records' size. Each entry is added with its size; the oldest
// go while the sizes add up to more than the budget, and an entry larger
// than the whole budget is not kept. An entry not used for idle goes
// too (at the next use of the cache), so that what a busy gateway holds
// is what it used lately, not whatever a full budget took: a cache that
// fills slowly would otherwise grow the heap for as long as it fills (a
// soak's record caches took 23 minutes). Safe for concurrent use.
type byteLRU[K comparable, V any] struct {
	mu     sync.Mutex
	lru    *simplelru.LRU[K, sized[V]] // not safe for concurrent use: under mu
	bytes  int                         // the sizes of the entries held, at most budget
	budget int
	idle   time.Duration
	now    func() time.Time // (tests set it)
}

type sized[V any] struct {
	v    V
	size int
	used time.Time // when last added or got
}

// cacheIdle is how long the record caches keep a record nobody reads:
// they serve the bursts of documents of the shipments being worked on
// (each submission reads its shipment's graph), and decoding a record
// again later costs tens of microseconds.
const cacheIdle = 5 * time.Minute

// newByteLRU returns a cache holding up to budget bytes of entries, each
// while it is used at least once every idle.
func newByteLRU[K comparable, V any](budget int, idle time.Duration) *byteLRU[K, V] {
	if budget <= 0 || idle <= 0 {
		panic("byteLRU: budget or idle <= 0") // a programming error
	}
	// No bound by count: the budget bounds it (each entry's size counts
	// what it costs to hold it, see recordCost).
	l, err := simplelru.NewLRU[K, sized[V]](math.MaxInt, nil)
	if err != nil {
		panic(err)
	}
	return &byteLRU[K, V]{lru: l, budget: budget, idle: idle, now: time.Now}
}

// get returns the value held for k, making it the most recently used.
func (c *byteLRU[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.expire(now)
	e, ok := c.lru.Get(k)
	if ok {
		e.used = now
		c.lru.Add(k, e) // (in place: Get made it the newest)
	}
	return e.v, ok
}

// expire drops the entries not used since now-idle: the oldest, as the
// list is in order of use.
func (c *byteLRU[K, V]) expire(now time.Time) {
	for {
		_, e, ok := c.lru.GetOldest()
		if !ok || now.Sub(e.used) < c.idle {
			return
		}
		c.lru.RemoveOldest()
		c.bytes -= e.size
	}
}

// add holds v for k, reckoned as size bytes, in place of any value held
// for k, and evicts the least recently used entries while over budget. A
// value larger than the budget is not held (nor is the one it replaces).
func (c *byteLRU[K, V]) add(k K, v V, size int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.expire(now)
	if old, ok := c.lru.Peek(k); ok {
		c.lru.Remove(k)
		c.bytes -= old.size
	}
	if size > c.budget {
		return
	}
	c.lru.Add(k, sized[V]{v: v, size: size, used: now})
	c.bytes += size
	for c.bytes > c.budget {
		_, old, _ := c.lru.RemoveOldest() // never the one just added: it fits alone
		c.bytes -= old.size
	}
}

// usage returns the number of entries held and the sum of their sizes.
func (c *byteLRU[K, V]) usage() (entries, bytes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(c.now())
	return c.lru.Len(), c.bytes
}

// holds reports whether a value is held for k, leaving its recency as it is.
func (c *byteLRU[K, V]) holds(k K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(c.now())
	return c.lru.Contains(k)
}
