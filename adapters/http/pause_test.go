package http_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	httpapi "github.com/landsea/corridor/adapters/http"
	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/s3"
	"github.com/landsea/corridor/storage/storagetest"
)

// With MinIO hung (SIGSTOP), submits, reads and authentications answer
// 503 with Retry-After once the request timeout passes, never 500.
func TestPausedMinIO503(t *testing.T) {
	m := testenv.StartMinIO(t)
	archive := s3.New(m.Endpoint, m.Bucket, m.AccessKey, m.SecretKey)
	if err := archive.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	store := storagetest.Local(t)
	signer, _ := exchange.NewSigner(bytes.Repeat([]byte{7}, 32))
	svc := exchange.NewService(archive, store, store, archive, signer, nil)
	e := &env{srv: httpapi.New(svc, httpapi.Config{RequestTimeout: 300 * time.Millisecond}), svc: svc, store: store, keys: map[string]string{}}
	for _, p := range testParties {
		if _, err := svc.CreateParty(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		e.keys[p.ID], _, _ = svc.IssueKey(context.Background(), p.ID)
	}
	if r := e.do(t, "GET", "/v1/inbox", "cq-mto", nil); r.status != 200 { // its key is cached from now on
		t.Fatalf("before the pause: %d %s", r.status, r.body)
	}
	m.Pause(t)
	defer m.Resume(t)
	for i := range 10 {
		r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill"))
		if r.status != 503 || r.header.Get("Retry-After") == "" {
			t.Fatalf("submit %d with MinIO paused: %d %s", i+1, r.status, r.body)
		}
	}
	// A key not cached yet is looked up in the paused store: not a bad
	// key (no invalid_token challenge).
	if r := e.do(t, "GET", "/v1/inbox", "cq-rail", nil); r.status != 503 || r.header.Get("WWW-Authenticate") != "" {
		t.Fatalf("authentication with MinIO paused: %d %s, WWW-Authenticate %q", r.status, r.body, r.header.Get("WWW-Authenticate"))
	}
	if r := e.do(t, "GET", "/v1/admin/parties", "", nil); r.status != 401 {
		t.Fatalf("admin without a key: %d", r.status)
	}
}
