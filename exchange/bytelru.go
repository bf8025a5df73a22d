package exchange

import (
	"math"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// byteLRU is a least-recently-used cache bounded by the bytes its entries
// are reckoned to hold rather than by their number: records range from a
// few hundred bytes to tens of KB, so a bound by count let memory grow
// with the records' size. Each entry is added with its size; the oldest
// go while the sizes add up to more than the budget, and an entry larger
// than the whole budget is not kept. Safe for concurrent use.
type byteLRU[K comparable, V any] struct {
	mu     sync.Mutex
	lru    *simplelru.LRU[K, sized[V]] // not safe for concurrent use: under mu
	bytes  int                         // the sizes of the entries held, at most budget
	budget int
}

type sized[V any] struct {
	v    V
	size int
}

// newByteLRU returns a cache holding up to budget bytes of entries.
func newByteLRU[K comparable, V any](budget int) *byteLRU[K, V] {
	if budget <= 0 {
		panic("byteLRU: budget <= 0") // a programming error
	}
	// No bound by count: the budget bounds it (each entry's size counts
	// what it costs to hold it, see recordCost).
	l, err := simplelru.NewLRU[K, sized[V]](math.MaxInt, nil)
	if err != nil {
		panic(err)
	}
	return &byteLRU[K, V]{lru: l, budget: budget}
}

// get returns the value held for k, making it the most recently used.
func (c *byteLRU[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.lru.Get(k)
	return e.v, ok
}

// add holds v for k, reckoned as size bytes, in place of any value held
// for k, and evicts the least recently used entries while over budget. A
// value larger than the budget is not held (nor is the one it replaces).
func (c *byteLRU[K, V]) add(k K, v V, size int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.lru.Peek(k); ok {
		c.lru.Remove(k)
		c.bytes -= old.size
	}
	if size > c.budget {
		return
	}
	c.lru.Add(k, sized[V]{v: v, size: size})
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
	return c.lru.Len(), c.bytes
}

// holds reports whether a value is held for k, leaving its recency as it is.
func (c *byteLRU[K, V]) holds(k K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Contains(k)
}
