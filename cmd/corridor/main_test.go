package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
)

// gateway starts a real gateway (the code `corridor serve` runs) on a free
// port with the demo corridor loaded, and stops it when the test ends.
func gateway(t testing.TB, storage storageFlags, with ...func(*Gateway)) (g *Gateway, base string, stop func() error) {
	t.Helper()
	storage.VisibilityTimeout = 2 * time.Second
	g = &Gateway{Storage: storage, Listen: "127.0.0.1:0", Demo: true, DemoDir: "../../deploy/demo",
		BodyLimit: 1 << 20, RateLimit: 100000, MaxWait: 10 * time.Second, AdminKey: "test-admin-key-0123456789", LogTo: io.Discard}
	for _, f := range with {
		f(g)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := g.Open(ctx); err != nil {
		t.Fatalf("open gateway: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	var once bool
	var runErr error
	stop = func() error {
		if !once {
			once = true
			cancel()
			runErr = <-done
			g.Close()
		}
		return runErr
	}
	t.Cleanup(func() { stop() })
	return g, "http://" + g.Addr(), stop
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func call(t *testing.T, method, url, key string, body []byte, hdr ...string) resp {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	data, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, r.Header, data}
}

func decode[T any](t *testing.T, r resp) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
	return v
}

func key(party string) string { return "cor.demo-" + party + ".demo" }

type inboxResp struct {
	Messages []exchange.InboxMessage `json:"messages"`
}

func msgIDs(in inboxResp) []string {
	var ids []string
	for _, m := range in.Messages {
		ids = append(ids, m.ID)
	}
	return ids
}

// TestEndToEnd runs one document's whole path through the real binary's
// code over HTTP, on the embedded backend, on Redis + MinIO and on a Redis
// Cluster + MinIO.
func TestEndToEnd(t *testing.T) {
	t.Run("Embedded", func(t *testing.T) {
		endToEnd(t, storageFlags{Data: t.TempDir()})
	})
	t.Run("RedisMinIO", func(t *testing.T) {
		s3 := testenv.MinIO(t)
		redisURL := testenv.RedisURL(t)
		// A bucket of its own: the demo's document ids are the same in every run.
		bucket := "e2e-" + testenv.Prefix()
		endToEnd(t, storageFlags{Data: t.TempDir(), RedisURL: redisURL, RedisPrefix: testenv.Prefix(), S3Endpoint: s3.Endpoint, S3Bucket: bucket,
			S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey})
	})
	t.Run("RedisClusterMinIO", func(t *testing.T) {
		s3 := testenv.MinIO(t)
		endToEnd(t, storageFlags{Data: t.TempDir(), RedisCluster: testenv.RedisCluster(t), RedisPrefix: testenv.Prefix(), S3Endpoint: s3.Endpoint,
			S3Bucket: "e2e-" + testenv.Prefix(), S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey})
	})
}

func endToEnd(t *testing.T, storage storageFlags) {
	g, base, stop := gateway(t, storage)

	// The demo scenario was loaded: sg-motors sees the shipment, in time order.
	sh := decode[exchange.Shipment](t, call(t, "GET", base+"/v1/shipments/CQNL2026000187", key("sg-motors"), nil))
	// The demo's title journey ended with the consignee's surrender to the MTO.
	if sh.Holder != "cq-mto" || sh.TitleStatus != exchange.TitleSurrendered || len(sh.Events) != 7 {
		t.Fatalf("shipment holder %q (%s) with %d events; want cq-mto, SURRENDERED and 7", sh.Holder, sh.TitleStatus, len(sh.Events))
	}
	if !slices.IsSortedFunc(sh.Events, func(a, b exchange.Event) int { return strings.Compare(a.EventDateTime, b.EventDateTime) }) {
		t.Fatalf("events out of order: %+v", sh.Events)
	}
	if len(sh.Customs) != 2 || sh.Customs[0].Status != "RELEASED" || sh.Customs[1].CustomsAuthority != "sg-customs" {
		t.Fatalf("customs = %+v", sh.Customs)
	}
	// The single window: the export declaration (lithium batteries among the
	// auto parts) was routed to customs, the maritime safety administration
	// and the terminal of Qinzhou; all three released it.
	var deciders []string
	for _, a := range sh.Customs[0].Answers {
		deciders = append(deciders, a.Party+":"+a.Status)
	}
	if want := []string{"cq-customs:RELEASED", "qz-msa:RELEASED", "qz-port:RELEASED"}; !slices.Equal(deciders, want) {
		t.Fatalf("CN border answers %v, want %v", deciders, want)
	}
	for _, p := range []string{"cq-autoparts", "cq-rail", "qz-port"} {
		in := decode[inboxResp](t, call(t, "GET", base+"/v1/inbox?limit=100", key(p), nil))
		n := 0
		for _, m := range in.Messages {
			if m.Type == exchange.TypeClearance && bytes.Contains(m.Document, []byte(`"declarationNumber":"CQ2026EX0093412"`)) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%s got %d clearance messages for the export declaration, want 1", p, n)
		}
	}

	// Submit a new document: the gate-out at Singapore.
	doc, err := os.ReadFile("../../deploy/demo/extra/gate-out-singapore.json")
	if err != nil {
		t.Fatal(err)
	}
	r := call(t, "POST", base+"/v1/documents/tracking-event", key("beibu-line"), doc, "Idempotency-Key", "gtot-1")
	if r.status != http.StatusCreated {
		t.Fatalf("submit = %d %s", r.status, r.body)
	}
	rcpt := decode[exchange.Receipt](t, r)
	sum := sha256.Sum256(doc)
	if rcpt.SHA256 != hex.EncodeToString(sum[:]) || rcpt.SchemaVersion != 2 || rcpt.Sender != "beibu-line" {
		t.Fatalf("receipt = %+v", rcpt)
	}
	if !slices.Contains(rcpt.Recipients, "sg-motors") || slices.Contains(rcpt.Recipients, "beibu-line") {
		t.Fatalf("recipients = %v; want the bill's parties without the sender", rcpt.Recipients)
	}
	// The signature verifies against the published key.
	pk := decode[struct{ PublicKey string }](t, call(t, "GET", base+"/v1/receipt-key", key("beibu-line"), nil))
	pub, _ := base64.StdEncoding.DecodeString(pk.PublicKey)
	if err := exchange.VerifyReceipt(ed25519.PublicKey(pub), rcpt); err != nil {
		t.Fatal(err)
	}
	tampered := rcpt
	tampered.Recipients = []string{"someone-else"}
	if exchange.VerifyReceipt(ed25519.PublicKey(pub), tampered) == nil {
		t.Fatal("a tampered receipt verified")
	}

	// The same request again: 200 and the same receipt.
	r2 := call(t, "POST", base+"/v1/documents/tracking-event", key("beibu-line"), doc, "Idempotency-Key", "gtot-1")
	if r2.status != http.StatusOK || !bytes.Equal(r2.body, r.body) {
		t.Fatalf("replay = %d %s; want 200 and %s", r2.status, r2.body, r.body)
	}
	// An event is named by its eventID: the same event with another key
	// gets the same receipt, another event with its eventID is refused.
	if r2 := call(t, "POST", base+"/v1/documents/tracking-event", key("beibu-line"), doc, "Idempotency-Key", "gtot-2"); r2.status != http.StatusOK || !bytes.Equal(r2.body, r.body) {
		t.Fatalf("the same event with another key = %d %s; want 200 and %s", r2.status, r2.body, r.body)
	}
	other := bytes.Replace(doc, []byte("10:15:00"), []byte("10:16:00"), 1)
	if r := call(t, "POST", base+"/v1/documents/tracking-event", key("beibu-line"), other, "Idempotency-Key", "gtot-1"); r.status != http.StatusConflict ||
		!strings.Contains(string(r.body), `"pointer":"/eventID"`) {
		t.Fatalf("same key, other body = %d %s; want 409 at /eventID", r.status, r.body)
	}

	// The exact bytes come back, with the SHA-256 as ETag.
	got := call(t, "GET", base+"/v1/documents/"+rcpt.ID, key("sg-motors"), nil)
	if got.status != 200 || !bytes.Equal(got.body, doc) || got.header.Get("ETag") != `"`+rcpt.SHA256+`"` {
		t.Fatalf("get = %d etag %s, identical %v", got.status, got.header.Get("ETag"), bytes.Equal(got.body, doc))
	}
	if d := got.header.Get("Repr-Digest"); d != "sha-256=:"+base64.StdEncoding.EncodeToString(sum[:])+":" {
		t.Fatalf("Repr-Digest = %q", d)
	}

	// The recipient sees the new document once, acks it, and it never comes back.
	var all []exchange.InboxMessage
	for {
		in := decode[inboxResp](t, call(t, "GET", base+"/v1/inbox?limit=100", key("sg-motors"), nil))
		if len(in.Messages) == 0 {
			break
		}
		all = append(all, in.Messages...)
		if r := call(t, "POST", base+"/v1/inbox/ack", key("sg-motors"), mustJSON(map[string]any{"ids": msgIDs(in)})); r.status != 200 {
			t.Fatalf("ack = %d %s", r.status, r.body)
		}
	}
	count := 0
	for _, m := range all {
		if m.DocumentID == rcpt.ID {
			count++
			if m.SHA256 != rcpt.SHA256 || m.Sender != "beibu-line" || m.Type != "tracking-event" {
				t.Fatalf("message = %+v", m)
			}
		}
	}
	if count != 1 {
		t.Fatalf("sg-motors got the new document %d times; want once (of %d messages)", count, len(all))
	}
	if in := decode[inboxResp](t, call(t, "GET", base+"/v1/inbox?limit=100&wait=2.5", key("sg-motors"), nil)); len(in.Messages) != 0 {
		t.Fatalf("after ack and past the visibility timeout: %v", msgIDs(in))
	}

	// A message not acked comes back after the visibility timeout (2s here),
	// not before. (On a starved machine the second pull may come later than
	// that; then only the coming back is checked.)
	pulled := time.Now()
	first := decode[inboxResp](t, call(t, "GET", base+"/v1/inbox?limit=1", key("cq-customs"), nil))
	if len(first.Messages) != 1 {
		t.Fatalf("cq-customs inbox = %v", msgIDs(first))
	}
	in := decode[inboxResp](t, call(t, "GET", base+"/v1/inbox?limit=100", key("cq-customs"), nil))
	if slices.Contains(msgIDs(in), first.Messages[0].ID) && time.Since(pulled) < g.Storage.VisibilityTimeout {
		t.Fatal("an unacked message was delivered again before its visibility timeout")
	}
	again := decode[inboxResp](t, call(t, "GET", base+"/v1/inbox?limit=100&wait=5", key("cq-customs"), nil))
	if !slices.Contains(msgIDs(again), first.Messages[0].ID) {
		t.Fatalf("unacked message %s did not come back: %v", first.Messages[0].ID, msgIDs(again))
	}

	// The operator reads the timeline, never a document or a receipt.
	if r := call(t, "GET", base+"/v1/documents/"+rcpt.ID, key("corridor-ops"), nil); r.status != 404 {
		t.Fatalf("operator document = %d", r.status)
	}
	if r := call(t, "GET", base+"/v1/documents/"+rcpt.ID+"/receipt", key("corridor-ops"), nil); r.status != 404 {
		t.Fatalf("operator receipt = %d", r.status)
	}
	if r := call(t, "GET", base+"/v1/shipments/CQNL2026000187", key("corridor-ops"), nil); r.status != 200 {
		t.Fatalf("operator shipment = %d", r.status)
	}
	// An outsider: 404 for the document and the shipment, an empty inbox.
	outsider := addParty(t, base, "outsider-line", "carrier")
	if r := call(t, "GET", base+"/v1/documents/"+rcpt.ID, outsider, nil); r.status != 404 {
		t.Fatalf("outsider document = %d", r.status)
	}
	if r := call(t, "GET", base+"/v1/shipments/CQNL2026000187", outsider, nil); r.status != 404 {
		t.Fatalf("outsider shipment = %d", r.status)
	}
	if in := decode[inboxResp](t, call(t, "GET", base+"/v1/inbox", outsider, nil)); len(in.Messages) != 0 {
		t.Fatalf("outsider inbox = %v", msgIDs(in))
	}
	// No key, or a wrong one: 401.
	for _, k := range []string{"", "cor.demo-sg-motors.wrong", "nonsense"} {
		if r := call(t, "GET", base+"/v1/inbox", k, nil); r.status != 401 || r.header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("key %q: %d %s", k, r.status, r.header.Get("Content-Type"))
		}
	}
	// A customs response to an unknown declaration: 409, nothing stored or sent.
	resp := []byte(`{"declarationReference":"CQ2099EX0000001","customsAuthority":"cq-customs","status":"ACCEPTED","responseDateTime":"2026-11-20T09:00:00+08:00"}`)
	if r := call(t, "POST", base+"/v1/documents/customs-response", key("cq-customs"), resp); r.status != 409 || !strings.Contains(string(r.body), `"pointer":"/declarationReference"`) {
		t.Fatalf("response to unknown declaration = %d %s", r.status, r.body)
	}

	// Admin: a new party gets a key shown once, which works at once.
	r = call(t, "POST", base+"/v1/admin/parties", "test-admin-key-0123456789",
		[]byte(`{"id":"th-importer","name":"Bangkok Auto Import","roles":["consignee"],"country":"TH"}`))
	if r.status != 201 {
		t.Fatalf("create party = %d %s", r.status, r.body)
	}
	np := decode[struct{ ID, Key string }](t, r)
	if r := call(t, "GET", base+"/v1/inbox", np.Key, nil); r.status != 200 {
		t.Fatalf("new key = %d %s", r.status, r.body)
	}
	if r := call(t, "POST", base+"/v1/admin/parties", key("sg-motors"), []byte(`{}`)); r.status != 401 {
		t.Fatalf("admin with a party key = %d", r.status)
	}

	// SIGTERM drains: a long poll in flight completes, then Run returns.
	http.DefaultClient.CloseIdleConnections()
	waitFor(t, func() bool { return g.OpenConnections() == 0 })
	polled := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", base+"/v1/inbox?wait=2", nil)
		req.Header.Set("Authorization", "Bearer "+key("corridor-ops"))
		r, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err != nil {
			polled <- -1
			return
		}
		r.Body.Close()
		polled <- r.StatusCode
	}()
	waitFor(t, func() bool { return g.OpenConnections() == 1 })
	if err := stop(); err != nil {
		t.Fatalf("Run after shutdown = %v", err)
	}
	if st := <-polled; st != 200 {
		t.Fatalf("long poll in flight during shutdown = %d, want 200", st)
	}
}

// waitFor polls a condition of the server's state (not a timer): it
// fails the test only if the condition never holds within 10s.
// addParty creates a party through the admin API and returns its key.
func addParty(t *testing.T, base, id string, roles ...string) string {
	t.Helper()
	r := call(t, "POST", base+"/v1/admin/parties", "test-admin-key-0123456789",
		mustJSON(map[string]any{"id": id, "name": id, "roles": roles, "country": "SG"}))
	if r.status != 201 {
		t.Fatalf("add party %s: %d %s", id, r.status, r.body)
	}
	return decode[struct {
		Key string `json:"key"`
	}](t, r).Key
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition never held")
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// A grant is revoked on one gateway and is gone at once on another: both
// read grants from the shared index on every request, with no cache.
func TestGrantRevocationAcrossGateways(t *testing.T) {
	s3 := testenv.MinIO(t)
	storage := storageFlags{Data: t.TempDir(), RedisURL: testenv.RedisURL(t), RedisPrefix: testenv.Prefix(), S3Endpoint: s3.Endpoint,
		S3Bucket: "grants-" + testenv.Prefix(), S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey}
	_, one, _ := gateway(t, storage)
	_, two, _ := gateway(t, storage)
	const view = "/v1/shipments/CQNL2026000187"
	for _, base := range []string{one, two} {
		if r := call(t, "GET", base+view, key("sg-haulage"), nil); r.status != 200 {
			t.Fatalf("the demo's grantee on %s: %d %s", base, r.status, r.body)
		}
	}
	if r := call(t, "DELETE", one+view+"/grants/sg-haulage", key("sg-motors"), nil); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if r := call(t, "GET", two+view, key("sg-haulage"), nil); r.status != 404 {
		t.Fatalf("revoked grantee on the other gateway: %d", r.status)
	}
	if r := call(t, "POST", two+view+"/grants", key("sg-motors"), []byte(`{"party":"sg-haulage"}`)); r.status != 201 {
		t.Fatalf("grant again: %d %s", r.status, r.body)
	}
	if r := call(t, "GET", one+view, key("sg-haulage"), nil); r.status != 200 {
		t.Fatalf("granted again, on the first gateway: %d", r.status)
	}
}

// A demo key revoked through the admin API stays revoked when the gateway
// starts again with --demo; the other demo keys keep working.
func TestRevokedDemoKeyStaysRevokedAfterRestart(t *testing.T) {
	storage := storageFlags{Data: t.TempDir()}
	_, base, stop := gateway(t, storage)
	if r := call(t, "GET", base+"/v1/inbox", key("sg-motors"), nil); r.status != 200 {
		t.Fatalf("demo key before the revocation: %d %s", r.status, r.body)
	}
	if r := call(t, "DELETE", base+"/v1/admin/keys/demo-sg-motors", "test-admin-key-0123456789", nil); r.status != 204 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_, base, _ = gateway(t, storage)
	if r := call(t, "GET", base+"/v1/inbox", key("sg-motors"), nil); r.status != 401 {
		t.Fatalf("revoked demo key after a restart: %d %s", r.status, r.body)
	}
	if r := call(t, "GET", base+"/v1/inbox", key("cq-customs"), nil); r.status != 200 {
		t.Fatalf("another demo key after a restart: %d %s", r.status, r.body)
	}
}

func TestTrustedProxiesMustParse(t *testing.T) {
	g := &Gateway{Storage: storageFlags{Data: t.TempDir()}, Listen: "127.0.0.1:0", TrustedProxies: []string{"10.0.0.0/8", "proxy.example"},
		LogTo: io.Discard}
	if err := g.Open(context.Background()); err == nil || !strings.Contains(err.Error(), "proxy.example") {
		g.Close()
		t.Fatalf("Open with a trusted proxy that is no address = %v; want an error naming it", err)
	}
}

// sharedStorage is Redis and MinIO with a prefix and a bucket of this
// test's own, for gateways that share them.
func sharedStorage(t *testing.T) storageFlags {
	s3 := testenv.MinIO(t)
	return storageFlags{Data: t.TempDir(), RedisURL: testenv.RedisURL(t), RedisPrefix: testenv.Prefix(), S3Endpoint: s3.Endpoint,
		S3Bucket: "gw-" + testenv.Prefix(), S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey}
}

// A key revoked, or a party disabled, on one gateway stops working on
// another that has just accepted it (and cached it) within a second.
func TestRevocationAcrossGateways(t *testing.T) {
	storage := sharedStorage(t)
	_, one, _ := gateway(t, storage)
	_, two, _ := gateway(t, storage)
	for _, c := range []struct {
		name   string
		revoke func(party, key string) string // the admin path to DELETE
	}{
		{"key", func(_, key string) string { id, _, _ := exchange.ParseKey(key); return "/v1/admin/keys/" + id }},
		{"party", func(party, _ string) string { return "/v1/admin/parties/" + party }},
	} {
		t.Run(c.name, func(t *testing.T) {
			party := "revoked-" + c.name
			k := addParty(t, one, party, "carrier")
			for _, base := range []string{one, two} {
				if r := call(t, "GET", base+"/v1/inbox", k, nil); r.status != 200 {
					t.Fatalf("the new key on %s: %d %s", base, r.status, r.body)
				}
			}
			if r := call(t, "DELETE", one+c.revoke(party, k), "test-admin-key-0123456789", nil); r.status != 204 {
				t.Fatalf("revoke: %d %s", r.status, r.body)
			}
			revoked := time.Now()
			for {
				r := call(t, "GET", two+"/v1/inbox", k, nil)
				if r.status == 401 {
					t.Logf("refused on the other gateway %s after the revocation", time.Since(revoked).Round(time.Millisecond))
					break
				}
				if time.Since(revoked) > time.Second {
					t.Fatalf("the other gateway still answers %d to the revoked key a second later", r.status)
				}
			}
		})
	}
}

// Forty wrong secrets for one key id from one address, spread over two
// gateways, block neither another party's key from that address nor the
// same key id's right secret from another address; the guesser is slowed
// on both gateways.
func TestAuthFailuresAcrossGateways(t *testing.T) {
	storage := sharedStorage(t)
	behindProxy := func(g *Gateway) { g.TrustedProxies = []string{"127.0.0.1"} }
	_, one, _ := gateway(t, storage, behindProxy)
	_, two, _ := gateway(t, storage, behindProxy)
	k := addParty(t, one, "guessed", "carrier")
	id, _, _ := exchange.ParseKey(k)
	wrong := "cor." + id + ".wrong-secret"
	const attacker, holder = "203.0.113.7", "198.51.100.20"
	statuses := map[int]int{}
	for i := range 40 {
		base := []string{one, two}[i%2]
		statuses[call(t, "GET", base+"/v1/inbox", wrong, nil, "X-Forwarded-For", attacker).status]++
	}
	if statuses[401] != authFailures || statuses[429] != 40-authFailures {
		t.Fatalf("forty wrong secrets over two gateways: %v; want %d x 401, then 429", statuses, authFailures)
	}
	for _, base := range []string{one, two} {
		if r := call(t, "GET", base+"/v1/inbox", wrong, nil, "X-Forwarded-For", attacker); r.status != 429 {
			t.Fatalf("the guesser on %s: %d; want 429", base, r.status)
		}
		if r := call(t, "GET", base+"/v1/inbox", key("sg-motors"), nil, "X-Forwarded-For", attacker); r.status != 200 {
			t.Fatalf("another party from the guessing address on %s: %d %s", base, r.status, r.body)
		}
		if r := call(t, "GET", base+"/v1/inbox", k, nil, "X-Forwarded-For", holder); r.status != 200 {
			t.Fatalf("the key's holder from another address on %s: %d %s", base, r.status, r.body)
		}
	}
}

// A gateway stopped before it serves (its ctx done when Run starts)
// returns, and returns nil (Shutdown before Serve took the listener left
// it open: Run waited for ever).
func TestStopBeforeServe(t *testing.T) {
	for i := range 20 {
		g := &Gateway{Storage: storageFlags{Data: t.TempDir(), VisibilityTimeout: time.Second}, Listen: "127.0.0.1:0",
			BodyLimit: 1 << 20, RateLimit: 1000, MaxWait: time.Second, LogTo: io.Discard}
		if err := g.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d: %v", i, err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("run %d: Run did not return after its ctx ended", i)
		}
		g.Close()
	}
}
