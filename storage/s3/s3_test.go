package s3_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/schemas"
	"github.com/landsea/corridor/storage/s3"
	"github.com/landsea/corridor/storage/storagetest"
)

func open(t *testing.T) *s3.Store { return storagetest.MinIO(t) }

func TestConformance(t *testing.T) {
	t.Run("Archive", func(t *testing.T) {
		storagetest.Archive(t, func(t *testing.T) exchange.Archive { return open(t) })
	})
	t.Run("Parties", func(t *testing.T) {
		storagetest.Parties(t, func(t *testing.T) exchange.Parties { return open(t) })
	})
	t.Run("Blobs", func(t *testing.T) {
		storagetest.Blobs(t, func(t *testing.T) exchange.Blobs { return open(t) })
	})
}

func TestUnreachableS3IsUnavailable(t *testing.T) {
	s := s3.New("127.0.0.1:1", "b", "k", "secretsecret")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Open(ctx); !errors.Is(err, exchange.ErrUnavailable) {
		t.Fatalf("Open against a closed port = %v, want ErrUnavailable", err)
	}
}

// countingTransport counts the requests to document objects.
type countingTransport struct {
	mu     sync.Mutex
	calls  []string
	ranges []string // the Range header of each call
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/docs/") || strings.Contains(r.URL.Path, "/documents/") {
		c.mu.Lock()
		c.calls = append(c.calls, r.Method+" "+r.URL.Path)
		c.ranges = append(c.ranges, r.Header.Get("Range"))
		c.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls, c.ranges = nil, nil
	return out
}

// A submitted document costs one S3 request: a conditional PUT of one
// object holding its record and its bytes. A replay costs none.
func TestOneRequestPerSubmit(t *testing.T) {
	env := testenv.MinIO(t)
	count := &countingTransport{}
	arch := s3.New(env.Endpoint, env.Bucket, env.AccessKey, env.SecretKey)
	arch.Prefix, arch.Transport = testenv.Prefix()+"/", count
	if err := arch.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	ix := storagetest.Local(t)
	signer, _ := exchange.NewSigner(bytes.Repeat([]byte{2}, 32))
	svc := exchange.NewService(arch, ix, ix, ix, signer, nil)
	mto, err := svc.CreateParty(context.Background(), exchange.Party{ID: "cq-mto", Name: "MTO", Roles: []exchange.Role{exchange.RoleMTO}, Country: "CN"})
	if err != nil {
		t.Fatal(err)
	}
	body, err := schemas.Example("one-bill", 1)
	if err != nil {
		t.Fatal(err)
	}
	count.take()
	rc, created, err := svc.Submit(context.Background(), mto, exchange.Submission{Type: "one-bill", Body: body})
	if err != nil || !created {
		t.Fatal(err)
	}
	if calls := count.take(); len(calls) != 1 || !strings.HasPrefix(calls[0], "PUT ") {
		t.Fatalf("S3 requests of a submit: %v; want one PUT", calls)
	}
	if _, created, err := svc.Submit(context.Background(), mto, exchange.Submission{Type: "one-bill", Body: body}); err != nil || created {
		t.Fatalf("replay: %v %v", created, err)
	}
	if calls := count.take(); len(calls) != 0 {
		t.Fatalf("S3 requests of a replay: %v; want none", calls)
	}
	got, err := arch.Body(context.Background(), rc.ID)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read back: %v", err)
	}
	// The object's layout is the ledger's: a line naming it, the record, the exact bytes.
	c, err := minio.New(env.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(env.AccessKey, env.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := c.GetObject(context.Background(), env.Bucket, arch.Prefix+"docs/"+rc.ID, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(obj)
	first, rest, _ := bytes.Cut(raw, []byte("\n"))
	record, bytesAfter, _ := bytes.Cut(rest, []byte("\n"))
	if err != nil || string(first) != "corridor-document 1" || !json.Valid(record) || !bytes.Equal(bytesAfter, body) {
		t.Fatalf("object layout: %q... (%v)", raw[:min(len(raw), 60)], err)
	}
}

// Archives written in the layout before one object per document (a body
// and a record object) are still read, and walked.
func TestOldLayoutIsRead(t *testing.T) {
	env := testenv.MinIO(t)
	s := open(t)
	c, err := minio.New(env.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(env.AccessKey, env.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	rec := exchange.Record{Receipt: exchange.Receipt{ID: exchange.DocumentID("old", "", []byte{1}), Type: "one-bill", SchemaVersion: 1,
		Sender: "cq-mto", SHA256: "00", ReceivedAt: time.Now().UTC().Truncate(time.Microsecond)}, Size: 7}
	raw, _ := json.Marshal(rec)
	for name, data := range map[string][]byte{"documents/" + rec.ID + "/body": []byte("{\"v\":1}"), "documents/" + rec.ID + "/record.json": raw} {
		if _, err := c.PutObject(context.Background(), env.Bucket, s.Prefix+name, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Record(context.Background(), rec.ID)
	if err != nil || got.ID != rec.ID || !got.ReceivedAt.Equal(rec.ReceivedAt) {
		t.Fatalf("old record: %+v %v", got, err)
	}
	if body, err := s.Body(context.Background(), rec.ID); err != nil || string(body) != `{"v":1}` {
		t.Fatalf("old body: %q %v", body, err)
	}
	n := 0
	if err := s.Walk(context.Background(), func(r exchange.Record) error {
		if r.ID == rec.ID {
			n++
		}
		return nil
	}); err != nil || n != 1 {
		t.Fatalf("walk found the old document %d times: %v", n, err)
	}
}

// Record reads the head of a document's object, not its body; a record
// longer than that head is read with the whole object. Both come back as
// they were put, the body too.
func TestRecordReadFromTheHead(t *testing.T) {
	ctx := context.Background()
	env := testenv.MinIO(t)
	count := &countingTransport{}
	s := s3.New(env.Endpoint, env.Bucket, env.AccessKey, env.SecretKey)
	s.Prefix, s.Transport = testenv.Prefix()+"/", count
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	const head = 16 << 10 // what Record reads first
	record := func(name string, fact, body int) (exchange.Record, []byte) {
		b := bytes.Repeat([]byte("b"), body)
		return exchange.Record{Receipt: exchange.Receipt{ID: exchange.DocumentID("head", name, nil), Type: "tracking-event", SchemaVersion: 1,
			Sender: "cq-rail", SHA256: "00", ReceivedAt: time.Date(2026, 11, 27, 13, 0, 0, 123456000, time.UTC)}, Size: int64(body),
			Facts: map[string]string{"note": strings.Repeat("f", fact)}}, b
	}
	// lineEndsAt is the fact length that puts the record line's newline at
	// byte i of the object ("corridor-document 1\n", the record, "\n").
	lineEndsAt := func(name string, i, body int) int {
		rec, _ := record(name, 0, body)
		raw, _ := json.Marshal(rec)
		return i - len("corridor-document 1\n") - len(raw)
	}
	for _, c := range []struct {
		name       string
		fact, body int
		ranges     []string // of the reads of Record
	}{
		{"LargeBody", 10, 1 << 20, []string{"bytes=0-16383"}},
		{"LongRecord", 40 << 10, 100, []string{"bytes=0-16383", ""}},
		{"LineEndsInTheHead", lineEndsAt("LineEndsInTheHead", head-1, 5000), 5000, []string{"bytes=0-16383"}},
		{"LineEndsPastTheHead", lineEndsAt("LineEndsPastTheHead", head, 5000), 5000, []string{"bytes=0-16383", ""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec, body := record(c.name, c.fact, c.body)
			if err := s.Put(ctx, rec, body); err != nil {
				t.Fatal(err)
			}
			count.take()
			got, err := s.Record(ctx, rec.ID)
			count.mu.Lock()
			ranges := count.ranges
			count.mu.Unlock()
			if !slices.Equal(ranges, c.ranges) {
				t.Errorf("Record read ranges %q; want %q", ranges, c.ranges)
			}
			want, _ := json.Marshal(rec)
			if raw, _ := json.Marshal(got); err != nil || !bytes.Equal(raw, want) {
				t.Fatalf("Record = %.200s, %v; want %.200s", raw, err, want)
			}
			if b, err := s.Body(ctx, rec.ID); err != nil || !bytes.Equal(b, body) {
				t.Fatalf("Body: %d bytes, %v; want %d", len(b), err, len(body))
			}
		})
	}
	count.take()
	if _, err := s.Record(ctx, exchange.DocumentID("head", "none", nil)); !errors.Is(err, exchange.ErrNotFound) {
		t.Fatalf("Record of nothing: %v; want ErrNotFound", err)
	}
	if calls := count.take(); len(calls) != 2 { // its object, then the layout before's record
		t.Fatalf("Record of nothing made %d requests (%q); want 2", len(calls), calls)
	}
}
