// Package s3 archives Corridor's documents in MinIO or any S3 store with
// minio-go: the exact bytes and their record, each written once with
// If-None-Match: * so an object is never overwritten; and the parties and
// their key hashes, so the archive holds everything that cannot be rebuilt.
package s3

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/landsea/corridor/exchange"
)

// Store implements exchange.Archive and exchange.Parties on S3.
type Store struct {
	Endpoint  string // host:port
	Bucket    string
	AccessKey string
	SecretKey string
	Secure    bool   // https
	Region    string // optional
	// Prefix starts every object name, so several corridors can share a bucket.
	Prefix string
	// Transport, when set, carries the requests (tests count them with it).
	Transport http.RoundTripper

	client *minio.Client
}

var (
	_ exchange.Archive = (*Store)(nil)
	_ exchange.Parties = (*Store)(nil)
)

// New returns a store with defaults set; call Open before use.
func New(endpoint, bucket, accessKey, secretKey string) *Store {
	return &Store{Endpoint: endpoint, Bucket: bucket, AccessKey: accessKey, SecretKey: secretKey}
}

// Open connects and creates the bucket when it is missing.
func (s *Store) Open(ctx context.Context) error {
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Secure: s.Secure, Region: s.Region,
		MaxRetries: 3, Transport: s.Transport,
	})
	if err != nil {
		return fmt.Errorf("s3 client: %w", err)
	}
	s.client = c
	ok, err := c.BucketExists(ctx, s.Bucket)
	if err != nil {
		return wrap(fmt.Errorf("check bucket %s: %w", s.Bucket, err))
	}
	if !ok {
		if err := c.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{Region: s.Region}); err != nil {
			if code := minio.ToErrorResponse(err).Code; code != "BucketAlreadyOwnedByYou" && code != "BucketAlreadyExists" {
				return wrap(fmt.Errorf("create bucket %s: %w", s.Bucket, err))
			}
		}
	}
	return nil
}

// Close releases nothing: the client holds only idle connections.
func (s *Store) Close() error { return nil }

// Ping reports whether the bucket can be reached.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.client.BucketExists(ctx, s.Bucket)
	return wrap(err)
}

// wrap translates minio-go errors into exchange's. A call cut short by its
// context is a backend that did not answer in time (a hung MinIO holds
// connections open and says nothing): ErrUnavailable, with the context's
// error kept in the chain for callers that stop on cancellation.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("s3: %w: %w", err, exchange.ErrUnavailable)
	}
	var nerr net.Error
	if errors.As(err, &nerr) && nerr.Timeout() {
		return fmt.Errorf("s3: %w: %w", err, exchange.ErrUnavailable)
	}
	// minio-go's ToErrorResponse reads only an unwrapped ErrorResponse.
	var resp minio.ErrorResponse
	errors.As(err, &resp)
	switch {
	case resp.Code == "NoSuchKey" || resp.StatusCode == http.StatusNotFound:
		return exchange.ErrNotFound
	case resp.Code == "PreconditionFailed" || resp.StatusCode == http.StatusPreconditionFailed:
		return exchange.ErrExists
	case resp.StatusCode == 0 || resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout ||
		resp.StatusCode == http.StatusTooManyRequests || resp.Code == "RequestTimeout" || resp.Code == "SlowDown":
		return fmt.Errorf("s3: %w: %w", err, exchange.ErrUnavailable)
	}
	return fmt.Errorf("s3: %w", err)
}

func (s *Store) name(parts ...string) string { return s.Prefix + strings.Join(parts, "") }

// putOnce writes an object only if none exists under the name.
func (s *Store) putOnce(ctx context.Context, name string, data []byte, meta map[string]string) error {
	opts := minio.PutObjectOptions{ContentType: "application/json", UserMetadata: meta}
	opts.SetMatchETagExcept("*") // If-None-Match: *
	// The exact length and a seekable reader: no oversized parts, and a
	// retry resends the same bytes.
	_, err := s.client.PutObject(ctx, s.Bucket, name, bytes.NewReader(data), int64(len(data)), opts)
	return wrap(err)
}

func (s *Store) put(ctx context.Context, name string, data []byte) error {
	_, err := s.client.PutObject(ctx, s.Bucket, name, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/json"})
	return wrap(err)
}

func (s *Store) read(ctx context.Context, name string) ([]byte, error) {
	return s.readRange(ctx, name, 0)
}

// readRange reads the first n bytes of an object (all of it when n is 0
// or the object is shorter).
func (s *Store) readRange(ctx context.Context, name string, n int64) ([]byte, error) {
	var opts minio.GetObjectOptions
	if n > 0 {
		if err := opts.SetRange(0, n-1); err != nil {
			return nil, err
		}
	}
	obj, err := s.client.GetObject(ctx, s.Bucket, name, opts)
	if err != nil {
		return nil, wrap(err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		return nil, wrap(err)
	}
	return data, nil
}

// A document is one object, "docs/<id>", written once in one conditional
// PUT: a first line naming the layout, the record as one line of JSON,
// then the exact bytes received. (Archives written before this layout
// keep "documents/<id>/body" and "documents/<id>/record.json"; they are
// read as they are.)
const docMagic = "corridor-document 1\n"

func encodeDoc(rec exchange.Record, body []byte) ([]byte, error) {
	raw, err := json.Marshal(rec) // one line: encoding/json escapes newlines in strings
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(docMagic)+len(raw)+1+len(body))
	out = append(out, docMagic...)
	out = append(out, raw...)
	out = append(out, '\n')
	return append(out, body...), nil
}

func decodeDoc(data []byte) (exchange.Record, []byte, error) {
	var rec exchange.Record
	rest, ok := bytes.CutPrefix(data, []byte(docMagic))
	if !ok {
		return rec, nil, errors.New("s3: not a corridor document object")
	}
	line, body, ok := bytes.Cut(rest, []byte("\n"))
	if !ok {
		return rec, nil, errors.New("s3: a corridor document object without its record line")
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return rec, nil, fmt.Errorf("s3: decode record: %w", err)
	}
	return rec, body, nil
}

// Put writes the document (record and exact bytes, with type, version,
// sender, SHA-256 and time as object metadata too) in one write-once PUT.
func (s *Store) Put(ctx context.Context, rec exchange.Record, body []byte) error {
	meta := map[string]string{
		"Corridor-Type": rec.Type, "Corridor-Schema-Version": strconv.Itoa(rec.SchemaVersion),
		"Corridor-Sender": rec.Sender, "Corridor-Sha256": rec.SHA256,
		"Corridor-Received-At": rec.ReceivedAt.UTC().Format(time.RFC3339Nano),
	}
	data, err := encodeDoc(rec, body)
	if err != nil {
		return err
	}
	if err := s.putOnce(ctx, s.name("docs/", rec.ID), data, meta); err != nil {
		if errors.Is(err, exchange.ErrExists) {
			return err
		}
		return fmt.Errorf("put document: %w", err)
	}
	return nil
}

// doc reads a document in either layout.
func (s *Store) doc(ctx context.Context, id string) (exchange.Record, []byte, error) {
	if !safeID(id) {
		return exchange.Record{}, nil, exchange.ErrNotFound
	}
	data, err := s.read(ctx, s.name("docs/", id))
	if err == nil {
		return decodeDoc(data)
	}
	if !errors.Is(err, exchange.ErrNotFound) {
		return exchange.Record{}, nil, err
	}
	rec, err := s.oldRecord(ctx, id)
	if err != nil {
		return rec, nil, err
	}
	body, err := s.read(ctx, s.name("documents/", id, "/body"))
	return rec, body, err
}

// oldRecord reads a record of the layout before one object per document.
func (s *Store) oldRecord(ctx context.Context, id string) (exchange.Record, error) {
	var rec exchange.Record
	err := s.readJSON(ctx, "documents/", id, "/record.json", &rec)
	return rec, err
}

// Body returns a document's exact bytes.
func (s *Store) Body(ctx context.Context, id string) ([]byte, error) {
	_, body, err := s.doc(ctx, id)
	return body, err
}

// safeID: an id that could leave its folder names nothing.
func safeID(id string) bool { return id != "" && !strings.ContainsAny(id, "/.") }

// listJSON reads every JSON object under a prefix, in the listing's order.
func listJSON[T any](ctx context.Context, s *Store, prefix string) ([]T, error) {
	var out []T
	err := s.eachID(ctx, prefix, ".json", func(id string) error {
		var x T
		if err := s.readJSON(ctx, prefix, id, ".json", &x); err != nil {
			return err
		}
		out = append(out, x)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// readJSON decodes the object folder+id+suffix into v, or ErrNotFound.
func (s *Store) readJSON(ctx context.Context, folder, id, suffix string, v any) error {
	if !safeID(id) {
		return exchange.ErrNotFound
	}
	raw, err := s.read(ctx, s.name(folder, id, suffix))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, v)
}

// writeJSON stores v as the object folder+id+".json"; once, it refuses to
// replace an existing object (ErrExists).
func (s *Store) writeJSON(ctx context.Context, folder, id string, v any, once bool) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if once {
		return s.putOnce(ctx, s.name(folder, id, ".json"), raw, nil)
	}
	return s.put(ctx, s.name(folder, id, ".json"), raw)
}

// recordRange is how much of a document object Record reads first: the
// layout line and the record (a few KB), not the body (up to MBs); a
// record longer than that is read with the whole object.
const recordRange = 16 << 10

// Record returns a document's record.
func (s *Store) Record(ctx context.Context, id string) (exchange.Record, error) {
	if !safeID(id) {
		return exchange.Record{}, exchange.ErrNotFound
	}
	name := s.name("docs/", id)
	data, err := s.readRange(ctx, name, recordRange)
	if errors.Is(err, exchange.ErrNotFound) { // the layout before, or nothing
		return s.oldRecord(ctx, id)
	} else if err != nil {
		return exchange.Record{}, err
	}
	if rest, ok := bytes.CutPrefix(data, []byte(docMagic)); ok && bytes.IndexByte(rest, '\n') < 0 {
		if data, err = s.read(ctx, name); err != nil { // a longer record: the whole object
			return exchange.Record{}, err
		}
	}
	rec, _, err := decodeDoc(data)
	return rec, err
}

// Walk calls fn for every archived record, of both layouts.
func (s *Store) Walk(ctx context.Context, fn func(exchange.Record) error) error {
	err := s.eachID(ctx, "docs/", "", func(id string) error {
		rec, err := s.Record(ctx, id)
		if err != nil {
			return err
		}
		return fn(rec)
	})
	if err != nil {
		return err
	}
	return s.eachID(ctx, "documents/", "/record.json", func(id string) error {
		rec, err := s.oldRecord(ctx, id)
		if err != nil {
			return err
		}
		return fn(rec)
	})
}

// eachID calls fn with the id of every object folder+id+suffix.
func (s *Store) eachID(ctx context.Context, folder, suffix string, fn func(id string) error) error {
	ctx, cancel := context.WithCancel(ctx) // stops the listing when fn fails
	defer cancel()
	prefix := s.name(folder)
	for obj := range s.client.ListObjects(ctx, s.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return wrap(obj.Err)
		}
		if id, ok := strings.CutSuffix(strings.TrimPrefix(obj.Key, prefix), suffix); ok {
			if err := fn(id); err != nil {
				return err
			}
		}
	}
	return nil
}

// ---- blobs ----

var _ exchange.Blobs = (*Store)(nil)

// blobName is where an object of Blobs is kept: "blobs/<name>".
func (s *Store) blobName(name string) (string, error) {
	if !exchange.BlobName(name) {
		return "", fmt.Errorf("blob name %q: %w", name, exchange.ErrNotFound)
	}
	return s.name("blobs/", name), nil
}

// PutBlob writes an object whole.
func (s *Store) PutBlob(ctx context.Context, name string, data []byte) error {
	obj, err := s.blobName(name)
	if err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, s.Bucket, obj, bytes.NewReader(data), int64(len(data)),
		minio.PutObjectOptions{ContentType: "application/octet-stream"})
	return wrap(err)
}

// Blob reads an object.
func (s *Store) Blob(ctx context.Context, name string) ([]byte, error) {
	obj, err := s.blobName(name)
	if err != nil {
		return nil, err
	}
	return s.read(ctx, obj)
}

// DeleteBlob removes an object (S3 answers a name not there alike).
func (s *Store) DeleteBlob(ctx context.Context, name string) error {
	obj, err := s.blobName(name)
	if err != nil {
		return err
	}
	return wrap(s.client.RemoveObject(ctx, s.Bucket, obj, minio.RemoveObjectOptions{}))
}

// ---- parties ----

// CreateParty stores a new party, write-once.
func (s *Store) CreateParty(ctx context.Context, p exchange.Party) error {
	return s.writeJSON(ctx, "parties/", p.ID, p, true)
}

// UpdateParty replaces a stored party.
func (s *Store) UpdateParty(ctx context.Context, p exchange.Party) error {
	if _, err := s.Party(ctx, p.ID); err != nil {
		return err
	}
	return s.writeJSON(ctx, "parties/", p.ID, p, false)
}

// Party returns a party.
func (s *Store) Party(ctx context.Context, id string) (exchange.Party, error) {
	var p exchange.Party
	return p, s.readJSON(ctx, "parties/", id, ".json", &p)
}

// ListParties returns every party, by id (the listing's key order puts
// "a-b.json" before "a.json", so it sorts).
func (s *Store) ListParties(ctx context.Context) ([]exchange.Party, error) {
	out, err := listJSON[exchange.Party](ctx, s, "parties/")
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, err
}

// PutKey stores a key record.
func (s *Store) PutKey(ctx context.Context, k exchange.APIKey) error {
	return s.writeJSON(ctx, "keys/", k.ID, k, false)
}

// Key returns a key record.
func (s *Store) Key(ctx context.Context, id string) (exchange.APIKey, error) {
	var k exchange.APIKey
	return k, s.readJSON(ctx, "keys/", id, ".json", &k)
}

var _ exchange.Subscriptions = (*Store)(nil)

// PutSubscription stores a subscription (with its secrets: they sign).
func (s *Store) PutSubscription(ctx context.Context, sub exchange.Subscription) error {
	return s.writeJSON(ctx, "subscriptions/", sub.ID, sub, false)
}

// Subscription returns one.
func (s *Store) Subscription(ctx context.Context, id string) (exchange.Subscription, error) {
	var sub exchange.Subscription
	return sub, s.readJSON(ctx, "subscriptions/", id, ".json", &sub)
}

// DeleteSubscription removes one.
func (s *Store) DeleteSubscription(ctx context.Context, id string) error {
	if !safeID(id) {
		return nil
	}
	return wrap(s.client.RemoveObject(ctx, s.Bucket, s.name("subscriptions/", id, ".json"), minio.RemoveObjectOptions{}))
}

// ListSubscriptions returns them all.
func (s *Store) ListSubscriptions(ctx context.Context) ([]exchange.Subscription, error) {
	return listJSON[exchange.Subscription](ctx, s, "subscriptions/")
}
