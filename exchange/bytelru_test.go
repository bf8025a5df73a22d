package exchange_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
)

// TestByteCacheBudget: the entries' sizes add up to no more than the
// budget, the least recently used going first; an entry over the budget is
// not kept; one added again is counted once, at its new size.
func TestByteCacheBudget(t *testing.T) {
	c := exchange.NewByteLRUForTest(100, time.Now)
	want := func(step string, held map[string]string, bytes int) {
		t.Helper()
		n, b, err := c.Usage()
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if n != len(held) || b != bytes {
			t.Fatalf("%s: %d entries of %d bytes; want %d of %d", step, n, b, len(held), bytes)
		}
		for k, v := range held {
			if got, ok := c.Get(k); !ok || got != v {
				t.Fatalf("%s: %s is %q, %v; want %q", step, k, got, ok, v)
			}
		}
	}
	c.Add("a", "a1", 40)
	c.Add("b", "b1", 40)
	want("two fit", map[string]string{"a": "a1", "b": "b1"}, 80) // (reads a, then b)
	c.Get("a")
	c.Add("c", "c1", 40)
	if c.Holds("b") {
		t.Fatal("b, the least recently used, is still held")
	}
	want("b evicted", map[string]string{"a": "a1", "c": "c1"}, 80)
	c.Add("c", "c2", 10)
	want("c replaced, smaller", map[string]string{"a": "a1", "c": "c2"}, 50)
	c.Add("c", "c3", 60)
	want("c replaced, larger", map[string]string{"a": "a1", "c": "c3"}, 100)
	c.Add("d", "d1", 101)
	if c.Holds("d") {
		t.Fatal("d, larger than the budget, is held")
	}
	want("d over budget", map[string]string{"a": "a1", "c": "c3"}, 100)
	c.Add("a", "a2", 101)
	want("a replaced by one over budget", map[string]string{"c": "c3"}, 60)
	c.Add("e", "e1", 100)
	want("e takes it all", map[string]string{"e": "e1"}, 100)
	c.Add("f", "f1", 0)
	want("f costs nothing", map[string]string{"e": "e1", "f": "f1"}, 100)
}

// TestByteCacheConcurrent: goroutines adding and reading at once leave
// the count of bytes that of the entries held, within the budget (run with
// -race).
func TestByteCacheConcurrent(t *testing.T) {
	const budget = 10_000
	c := exchange.NewByteLRUForTest(budget, time.Now)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 5000 {
				k := fmt.Sprint(r.IntN(200))
				if r.IntN(2) == 0 {
					c.Get(k)
				} else {
					c.Add(k, k, r.IntN(budget/10+budget/100)) // some over a tenth
				}
			}
		})
	}
	wg.Wait()
	n, b, err := c.Usage()
	if err != nil {
		t.Fatal(err)
	}
	if b > budget || n == 0 {
		t.Fatalf("%d entries of %d bytes; want some, of at most %d", n, b, budget)
	}
}

// TestByteCacheIdle: an entry nobody added or got for CacheIdle goes, and
// its bytes with it, at the cache's next use; getting one keeps it.
func TestByteCacheIdle(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	now := t0
	c := exchange.NewByteLRUForTest(100, func() time.Time { return now })
	c.Add("a", "a1", 30)
	now = t0.Add(exchange.CacheIdle / 2)
	c.Add("b", "b1", 20)
	c.Add("c", "c1", 10)
	now = t0.Add(exchange.CacheIdle - time.Nanosecond)
	if _, ok := c.Get("c"); !ok || !c.Holds("a") {
		t.Fatal("an entry went before it was idle for CacheIdle")
	}
	now = t0.Add(exchange.CacheIdle)
	if c.Holds("a") {
		t.Fatal("a, idle for CacheIdle, is still held")
	}
	if n, b, err := c.Usage(); err != nil || n != 2 || b != 30 {
		t.Fatalf("after a went: %d entries of %d bytes (%v); want 2 of 30", n, b, err)
	}
	now = t0.Add(exchange.CacheIdle * 3 / 2)
	if _, ok := c.Get("b"); ok { // added at CacheIdle/2, never got
		t.Fatal("b, idle for CacheIdle, was got")
	}
	if !c.Holds("c") { // got at CacheIdle-1ns
		t.Fatal("c, got less than CacheIdle ago, went")
	}
	now = t0.Add(exchange.CacheIdle*2 - time.Nanosecond)
	if n, b, err := c.Usage(); err != nil || n != 0 || b != 0 {
		t.Fatalf("after every entry's idle time: %d entries of %d bytes (%v); want none", n, b, err)
	}
}
