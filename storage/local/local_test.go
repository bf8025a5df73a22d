package local_test

import (
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/storage/local"
	"github.com/landsea/corridor/storage/storagetest"
)

func open(t testing.TB, vis time.Duration) *local.Store {
	t.Helper()
	return storagetest.Local(t, func(s *local.Store) { s.VisibilityTimeout = vis })
}

func TestConformance(t *testing.T) {
	t.Run("Archive", func(t *testing.T) {
		storagetest.Archive(t, func(t *testing.T) exchange.Archive { return open(t, time.Minute) })
	})
	t.Run("Queue", func(t *testing.T) {
		storagetest.Queue(t, func(t *testing.T, vis time.Duration) exchange.Queue { return open(t, vis) })
	})
	t.Run("Index", func(t *testing.T) {
		storagetest.Index(t, func(t *testing.T) exchange.Index { return open(t, time.Minute) })
	})
	t.Run("Parties", func(t *testing.T) {
		storagetest.Parties(t, func(t *testing.T) exchange.Parties { return open(t, time.Minute) })
	})
	t.Run("Blobs", func(t *testing.T) {
		storagetest.Blobs(t, func(t *testing.T) exchange.Blobs { return open(t, time.Minute) })
	})
	t.Run("Outbox", func(t *testing.T) {
		storagetest.Outbox(t, func(t *testing.T) exchange.Outbox { return open(t, time.Minute) })
	})
}
