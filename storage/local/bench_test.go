package local_test

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPullEmpty is what an idle client costs: a pull of an empty inbox.
func BenchmarkPullEmpty(b *testing.B) {
	s := open(b, time.Minute)
	for b.Loop() {
		if _, err := s.Pull(context.Background(), "party-b", 10, 0); err != nil {
			b.Fatal(err)
		}
	}
}
