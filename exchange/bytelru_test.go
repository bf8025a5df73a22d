package exchange_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/landsea/corridor/exchange"
)

// TestByteCacheBudget: the entries' sizes add up to no more than the
// budget, the least recently used going first; an entry over the budget is
// not kept; one added again is counted once, at its new size.
func TestByteCacheBudget(t *testing.T) {
	c := exchange.NewByteLRUForTest(100)
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
	c := exchange.NewByteLRUForTest(budget)
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
