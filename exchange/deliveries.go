package exchange

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"
)

// The delivery cache keeps the bytes of recently archived documents, so the
// pulls and pushes that follow a submit within seconds read them without an
// archive request (one S3 GET per message otherwise), and a document sent to
// five parties is read once. Documents are write-once, so an entry never
// goes stale; only bytes that match their SHA-256 are kept, so the cache
// never serves what the archive would not. GET /v1/documents/{id} still
// reads (and checks) the archive.
const (
	// DeliveryCacheEntries and DeliveryCacheMaxBody bound the cache to
	// 64 MiB; a tracking event is about 1 KB, so it usually holds far less.
	DeliveryCacheEntries = 4096
	DeliveryCacheMaxBody = 16 << 10 // larger bodies are read from the archive each time
)

func newDeliveryCache() *lru.Cache[string, []byte] {
	c, err := lru.New[string, []byte](DeliveryCacheEntries)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return c
}

// remember keeps the archived bytes of document id for its deliveries.
func (s *Service) remember(id string, body []byte) {
	if s.deliveries != nil && len(body) <= DeliveryCacheMaxBody {
		s.deliveries.Add(id, body)
	}
}

// InboxMessageOf is a message as a pull returns it (and a push sends it):
// with its document's bytes, from the delivery cache or the archive.
func (s *Service) InboxMessageOf(ctx context.Context, m Message) (InboxMessage, error) {
	im := InboxMessage{ID: m.DocumentID, DocumentID: m.DocumentID, Type: m.Type, Sender: m.Sender,
		SHA256: m.SHA256, ReceivedAt: m.ReceivedAt}
	if s.deliveries != nil {
		if body, ok := s.deliveries.Get(m.DocumentID); ok {
			im.Document = body
			return im, nil
		}
	}
	body, err := s.Archive.Body(ctx, m.DocumentID)
	if err != nil {
		return InboxMessage{}, fmt.Errorf("read document %s: %w", m.DocumentID, err)
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) == m.SHA256 {
		s.remember(m.DocumentID, body)
	}
	im.Document = body
	return im, nil
}
