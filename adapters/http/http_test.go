package http_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	httpapi "github.com/landsea/corridor/adapters/http"
	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/schemas"
	"github.com/landsea/corridor/storage/local"
	"github.com/landsea/corridor/storage/redis"
	"github.com/landsea/corridor/storage/s3"
	"github.com/landsea/corridor/storage/storagetest"
)

type env struct {
	srv   *httpapi.Server
	svc   *exchange.Service
	store *local.Store
	keys  map[string]string
}

var testParties = []exchange.Party{
	{ID: "cq-mto", Name: "MTO", Roles: []exchange.Role{exchange.RoleMTO}, Country: "CN"},
	{ID: "cq-rail", Name: "Rail", Roles: []exchange.Role{exchange.RoleCarrier}, Country: "CN"},
	{ID: "cq-autoparts", Name: "Shipper", Roles: []exchange.Role{exchange.RoleShipper, exchange.RoleDeclarant}, Country: "CN"},
	{ID: "cq-customs", Name: "Customs", Roles: []exchange.Role{exchange.RoleCustoms}, Country: "CN"},
	{ID: "sg-motors", Name: "Consignee", Roles: []exchange.Role{exchange.RoleConsignee}, Country: "SG"},
	{ID: "outsider", Name: "Outsider", Roles: []exchange.Role{exchange.RoleCarrier, exchange.RoleDeclarant}, Country: "SG"},
	{ID: "corridor-ops", Name: "Operations centre", Roles: []exchange.Role{exchange.RoleOperator}, Country: "CN"},
}

// newEnv builds a server over the embedded store; queue, when given,
// replaces the store's queue.
func newEnv(t *testing.T, cfg httpapi.Config, store *local.Store, queue exchange.Queue) *env {
	t.Helper()
	if store == nil {
		store = storagetest.Local(t)
	}
	if queue == nil {
		queue = store
	}
	signer, _ := exchange.NewSigner(bytes.Repeat([]byte{7}, 32))
	svc := exchange.NewService(store, queue, store, store, signer, nil)
	e := &env{srv: httpapi.New(svc, cfg), svc: svc, store: store, keys: map[string]string{}}
	for _, p := range testParties {
		if _, err := svc.CreateParty(context.Background(), p); err != nil && exchange.ErrorCode(err) != exchange.CodeConflict {
			t.Fatal(err)
		}
		key, _, err := svc.IssueKey(context.Background(), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		e.keys[p.ID] = key
	}
	return e
}

type result struct {
	status  int
	header  http.Header
	body    []byte
	problem httpapi.Problem
}

func (e *env) do(t *testing.T, method, path, party string, body []byte, hdr ...string) result {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if party != "" {
		req.Header.Set("Authorization", "Bearer "+e.keys[party])
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.srv.App().Test(req, 10000)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header, body: data}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		if err := json.Unmarshal(data, &r.problem); err != nil {
			t.Fatalf("problem body %s: %v", data, err)
		}
		if r.problem.Status != resp.StatusCode || r.problem.Type == "" || r.problem.Title == "" {
			t.Fatalf("incomplete problem: %s", data)
		}
	}
	return r
}

func example(t *testing.T, typ string) []byte {
	b, err := schemas.Example(typ, 1) // the tests were written against the first versions
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pointers(p httpapi.Problem) []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Pointer)
	}
	return out
}

func TestSubmit201(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill"))
	if r.status != 201 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
	var rc exchange.Receipt
	if err := json.Unmarshal(r.body, &rc); err != nil {
		t.Fatal(err)
	}
	if r.header.Get("Location") != "/v1/documents/"+rc.ID || rc.SchemaVersion != 1 {
		t.Fatalf("location %q, receipt %+v", r.header.Get("Location"), rc)
	}
	if err := exchange.VerifyReceipt(e.svc.Signer.PublicKey(), rc); err != nil {
		t.Fatal(err)
	}
	if want := []string{"cq-autoparts", "cq-rail", "sg-motors"}; !slices.Equal(rc.Recipients, want) {
		t.Fatalf("recipients = %v, want the named gateway parties %v", rc.Recipients, want)
	}
}

func TestSubmit400(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	for name, body := range map[string]string{
		"not JSON": "hello", "trailing data": `{"a":1}{"b":2}`, "duplicate key": `{"issuer":"cq-mto","issuer":"x"}`,
		"huge exponent": `{"totalGrossWeight":1e2000000}`,
	} {
		r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", []byte(body))
		if r.status != 400 {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	if r := e.do(t, "POST", "/v1/documents/one-bill?version=x", "cq-mto", example(t, "one-bill")); r.status != 400 {
		t.Errorf("bad version: %d", r.status)
	}
	if r := e.do(t, "POST", "/v1/validate/one-bill?version=1&version=9", "cq-mto", example(t, "one-bill")); r.status != 400 {
		t.Errorf("two versions: %d", r.status)
	}
	if r := e.do(t, "POST", "/v1/validate/one-bill?version=", "cq-mto", example(t, "one-bill")); r.status != 200 {
		t.Errorf("an empty version (the newest): %d", r.status)
	}
	for cs, want := range map[string]int{"utf-8": 200, "UTF-8": 200, "utf8": 200, "latin1": 415, "utf-16": 415} {
		if r := e.do(t, "POST", "/v1/validate/one-bill", "cq-mto", example(t, "one-bill"), "Content-Type", "application/json; charset="+cs); r.status != want {
			t.Errorf("charset %s: %d, want %d", cs, r.status, want)
		}
	}
	if r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill"), "Idempotency-Key", strings.Repeat("k", 300)); r.status != 400 {
		t.Errorf("oversized Idempotency-Key: %d", r.status)
	}
	if r := e.do(t, "GET", "/v1/inbox?limit=0", "cq-mto", nil); r.status != 400 {
		t.Errorf("limit=0: %d", r.status)
	}
	if r := e.do(t, "POST", "/v1/inbox/ack", "cq-mto", []byte(`{"ids":[]}`)); r.status != 400 {
		t.Errorf("empty ack: %d", r.status)
	}
	if r := e.do(t, "POST", "/v1/inbox/ack", "cq-mto", []byte(`{"ids":["../etc"]}`)); r.status != 400 || !slices.Equal(pointers(r.problem), []string{"/ids/0"}) {
		t.Errorf("ack of a malformed id: %d %s", r.status, r.body)
	}
}

// Every number read from a query is checked for range, NaN and the
// infinities included (NaN passes every < and > check).
func TestInboxQuery400(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	for _, q := range []string{"wait=NaN", "wait=nan", "wait=Inf", "wait=+Inf", "wait=-Inf", "wait=infinity", "wait=-1",
		"wait=31", "wait=1e400", "limit=NaN", "limit=1e1", "limit=101", "limit=-1", "wait=0x1p-2&limit=0"} {
		if r := e.do(t, "GET", "/v1/inbox?"+q, "cq-mto", nil); r.status != 400 {
			t.Errorf("%s: %d %s", q, r.status, r.body)
		}
	}
	if r := e.do(t, "GET", "/v1/inbox?wait=0.001&limit=100", "cq-mto", nil); r.status != 200 {
		t.Errorf("a valid query: %d %s", r.status, r.body)
	}
}

func TestSubmit401(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	r := e.do(t, "POST", "/v1/documents/one-bill", "", example(t, "one-bill"))
	if r.status != 401 || r.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no key: %d", r.status)
	}
	e.keys["forger"] = strings.Replace(e.keys["cq-mto"], ".", ".x", 2)
	if r := e.do(t, "GET", "/v1/inbox", "forger", nil); r.status != 401 {
		t.Fatalf("wrong key: %d", r.status)
	}
	// A revoked key stops working.
	id, _, _ := exchange.ParseKey(e.keys["sg-motors"])
	if err := e.svc.RevokeKey(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if r := e.do(t, "GET", "/v1/inbox", "sg-motors", nil); r.status != 401 {
		t.Fatalf("revoked key: %d", r.status)
	}
}

func TestSubmit403(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	if r := e.do(t, "POST", "/v1/documents/one-bill", "cq-customs", example(t, "one-bill")); r.status != 403 {
		t.Fatalf("customs issuing a one bill: %d", r.status)
	}
	// A carrier may issue one bills, but not in another's name.
	if r := e.do(t, "POST", "/v1/documents/one-bill", "cq-rail", example(t, "one-bill")); r.status != 403 || !slices.Equal(pointers(r.problem), []string{"/issuer"}) {
		t.Fatalf("issuer mismatch: %d %s", r.status, r.body)
	}
}

func TestSubmit404(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	if r := e.do(t, "POST", "/v1/documents/bill-of-anything", "cq-mto", example(t, "one-bill")); r.status != 404 {
		t.Fatalf("unknown type: %d", r.status)
	}
	if r := e.do(t, "POST", "/v1/documents/one-bill?version=9", "cq-mto", example(t, "one-bill")); r.status != 404 {
		t.Fatalf("unknown version: %d", r.status)
	}
	if r := e.do(t, "GET", "/v1/documents/aaaaaaaaaaaaaaaaaaaaaaaaaa", "cq-mto", nil); r.status != 404 {
		t.Fatalf("unknown document: %d", r.status)
	}
	if r := e.do(t, "GET", "/v1/nothing", "cq-mto", nil); r.status != 404 {
		t.Fatalf("unknown route: %d", r.status)
	}
}

func TestSubmit409(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	// A rail note naming a one bill the gateway does not hold.
	r := e.do(t, "POST", "/v1/documents/rail-consignment-note", "cq-rail", example(t, "rail-consignment-note"))
	if r.status != 409 || !slices.Equal(pointers(r.problem), []string{"/oneBillReference"}) {
		t.Fatalf("unknown one bill: %d %s", r.status, r.body)
	}
	// A customs response to an unknown declaration: 409, nothing stored or sent.
	r = e.do(t, "POST", "/v1/documents/customs-response", "cq-customs", example(t, "customs-response"))
	if r.status != 409 || !slices.Equal(pointers(r.problem), []string{"/declarationReference"}) {
		t.Fatalf("unknown declaration: %d %s", r.status, r.body)
	}
	// A declaration, or an event, naming a bill the gateway does not hold.
	r = e.do(t, "POST", "/v1/documents/customs-declaration", "cq-autoparts", example(t, "customs-declaration"))
	if r.status != 409 || !slices.Equal(pointers(r.problem), []string{"/billReference"}) {
		t.Fatalf("declaration of an unknown bill: %d %s", r.status, r.body)
	}
	r = e.do(t, "POST", "/v1/documents/tracking-event", "cq-rail", example(t, "tracking-event"))
	if r.status != 409 || !slices.Equal(pointers(r.problem), []string{"/billReference"}) {
		t.Fatalf("event of an unknown bill: %d %s", r.status, r.body)
	}
	walked := 0
	_ = e.store.Walk(context.Background(), func(exchange.Record) error { walked++; return nil })
	if walked != 0 {
		t.Fatalf("archive holds %d documents after refusals; want 0", walked)
	}
	if msgs, _ := e.store.Pull(context.Background(), "cq-autoparts", 10, 0); len(msgs) != 0 {
		t.Fatalf("declarant got %d messages", len(msgs))
	}
	// Once the bill and the declaration are there, the response goes through.
	if r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill")); r.status != 201 {
		t.Fatal(r.status)
	}
	if r := e.do(t, "POST", "/v1/documents/customs-declaration", "cq-autoparts", example(t, "customs-declaration")); r.status != 201 {
		t.Fatalf("declaration: %d %s", r.status, r.body)
	}
	if r := e.do(t, "POST", "/v1/documents/customs-response", "cq-customs", example(t, "customs-response")); r.status != 201 {
		t.Fatalf("response: %d %s", r.status, r.body)
	}
	// The same bill number twice with other bytes is a conflict.
	other := bytes.Replace(example(t, "one-bill"), []byte(`"PRE"`), []byte(`"COL"`), 1)
	if r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", other); r.status != 409 || !slices.Equal(pointers(r.problem), []string{"/transportDocumentReference"}) {
		t.Fatalf("duplicate bill number: %d %s", r.status, r.body)
	}
}

// Over a real socket: fasthttp refuses the body while reading it.
func TestSubmit413(t *testing.T) {
	e := newEnv(t, httpapi.Config{BodyLimit: 16 << 10}, nil, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go e.srv.Serve(ln)
	defer e.srv.Shutdown(context.Background())
	big := []byte(`{"x":"` + strings.Repeat("a", 20<<10) + `"}`)
	req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/v1/documents/one-bill", bytes.NewReader(big))
	req.Header.Set("Authorization", "Bearer "+e.keys["cq-mto"])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p httpapi.Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != 413 || p.Status != 413 {
		t.Fatalf("oversized body: %d %+v %v", resp.StatusCode, p, err)
	}
}

func TestSubmit415(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	if r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill"), "Content-Type", "text/plain"); r.status != 415 {
		t.Fatalf("text/plain: %d", r.status)
	}
	// A compressed body could expand past the body limit: refused, never inflated.
	if r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", []byte{0x1f, 0x8b, 8, 0}, "Content-Encoding", "gzip"); r.status != 415 {
		t.Fatalf("gzip: %d %s", r.status, r.body)
	}
}

func TestSubmit422(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	bad := bytes.ReplaceAll(example(t, "one-bill"), []byte("CSQU3054383"), []byte("CSQU3054384"))
	bad = bytes.Replace(bad, []byte(`"HSCode": "870899"`), []byte(`"HSCode": "87089"`), 1)
	for _, path := range []string{"/v1/documents/one-bill", "/v1/validate/one-bill"} {
		r := e.do(t, "POST", path, "cq-mto", bad)
		want := []string{"/containers/0/containerNumber", "/goods/0/HSCode", "/goods/0/containerNumber"}
		if r.status != 422 || !slices.Equal(pointers(r.problem), want) {
			t.Fatalf("%s: %d, pointers %v; want 422 and %v", path, r.status, pointers(r.problem), want)
		}
	}
	if r := e.do(t, "POST", "/v1/validate/one-bill", "cq-mto", example(t, "one-bill")); r.status != 200 || !strings.Contains(string(r.body), `"valid":true`) {
		t.Fatalf("validate a good document: %d %s", r.status, r.body)
	}
}

// limiters are the ways a gateway counts: in its own process, or in Redis
// (shared by every gateway on it; a fresh prefix for each test).
var limiters = []struct {
	name string
	new  func(t *testing.T, name string, n int, per time.Duration) limiter
}{
	{"Memory", nil},
	{"Redis", func(t *testing.T, name string, n int, per time.Duration) limiter {
		s := redis.New(testenv.RedisURL(t))
		s.Prefix = testenv.Prefix()
		if err := s.Open(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.Limiter(name, n, per)
	}},
}

type limiter interface {
	httpapi.AuthLimiter
	httpapi.RateLimiter
}

func TestRateLimit429(t *testing.T) {
	for _, l := range limiters {
		t.Run(l.name, func(t *testing.T) {
			cfg := httpapi.Config{RateLimit: 3, RateWindow: time.Hour}
			if l.new != nil {
				cfg.RateLimiter = l.new(t, "party", 3, time.Hour)
			}
			rateLimit429(t, cfg)
		})
	}
}

// A party's documents are limited in volume as well as in number: past
// VolumeLimit KiB a window, validations and submits get 429 with
// Retry-After; requests without a document still pass, and other parties
// are not held up.
func TestVolumeLimit429(t *testing.T) {
	body := example(t, "one-bill")
	n := (len(body) + 1023) / 1024
	for _, l := range limiters {
		t.Run(l.name, func(t *testing.T) {
			cfg := httpapi.Config{BodyLimit: len(body), VolumeLimit: 2 * n, RateWindow: time.Hour}
			if l.new != nil {
				cfg.VolumeLimiter = l.new(t, "volume", 2*n, time.Hour)
			}
			e := newEnv(t, cfg, nil, nil)
			for i := range 2 {
				if r := e.do(t, "POST", "/v1/validate/one-bill", "cq-mto", body); r.status != 200 {
					t.Fatalf("document %d: %d %s", i, r.status, r.body)
				}
			}
			r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", body)
			if r.status != 429 || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "KiB of documents per") {
				t.Fatalf("a third document: %d, Retry-After %q, %s", r.status, r.header.Get("Retry-After"), r.body)
			}
			if r := e.do(t, "GET", "/v1/schemas", "cq-mto", nil); r.status != 200 {
				t.Fatalf("a request without a document: %d", r.status)
			}
			if r := e.do(t, "POST", "/v1/validate/one-bill", "cq-rail", body); r.status != 200 {
				t.Fatalf("another party's document: %d", r.status)
			}
		})
	}
}

// More than a bucket ever holds is refused, and told to wait the whole
// period, by either limiter: the caller should not retry sooner.
func TestAllowNMoreThanTheBucket(t *testing.T) {
	for _, l := range limiters {
		t.Run(l.name, func(t *testing.T) {
			var lim httpapi.RateLimiter = httpapi.NewMemoryLimiter(2, time.Hour)
			if l.new != nil {
				lim = l.new(t, "volume", 2, time.Hour)
			}
			ok, retry, err := lim.AllowN(context.Background(), "party:cq-mto", 3)
			if ok || retry != time.Hour || err != nil {
				t.Errorf("AllowN(3) of a bucket of 2 = %v, %v, %v; want false after the whole hour", ok, retry, err)
			}
			if ok, _, err := lim.AllowN(context.Background(), "party:cq-mto", 2); !ok || err != nil {
				t.Errorf("AllowN(2) of a full bucket of 2 = %v, %v; want it taken", ok, err)
			}
		})
	}
}

// A request without a document is not counted in the volume limit, so its
// body is kept small: a 4 MiB ack of a million ids cost 140 ms and 100 MB
// to decode before its 400. An ack of the most ids allowed, indented, fits.
func TestControlBody413(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	id := `"` + strings.Repeat("a", 26) + `"`
	huge := []byte(`{"ids":[` + id + strings.Repeat(","+id, (4<<20-100)/29) + `]}`)
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/inbox/ack"},
		{"POST", "/v1/bills/CQNL2026000187/title"},
		{"POST", "/v1/subscriptions"},
		{"POST", "/v1/shipments/CQNL2026000187/grants"},
	} {
		if r := e.do(t, c.method, c.path, "cq-mto", huge); r.status != 413 || r.problem.Type == "" {
			t.Errorf("%s %s with %d KiB: %d %.200s, want 413", c.method, c.path, len(huge)>>10, r.status, r.body)
		}
	}
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = strings.Repeat("a", 26)
	}
	most, _ := json.MarshalIndent(map[string][]string{"ids": ids}, "", "    ")
	if r := e.do(t, "POST", "/v1/inbox/ack", "cq-mto", most); r.status != 200 {
		t.Errorf("an ack of 1,000 ids (%d bytes): %d %.200s", len(most), r.status, r.body)
	}
}

// Two gateways on one Redis share a party's requests and its failed
// authentications: what one counted, the other refuses.
func TestLimitsHoldAcrossGateways(t *testing.T) {
	s := redis.New(testenv.RedisURL(t))
	s.Prefix = testenv.Prefix()
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	store := storagetest.Local(t)
	cfg := httpapi.Config{RateLimit: 4, RateWindow: time.Hour, AuthFailures: 3,
		RateLimiter: s.Limiter("party", 4, time.Hour), AuthLimiter: s.Limiter("auth", 3, time.Minute)}
	one := newEnv(t, cfg, store, nil)
	two := newEnv(t, cfg, store, nil)
	two.keys = one.keys // the same parties and keys: one shared store
	for i, e := range []*env{one, two, one, two} {
		if r := e.do(t, "GET", "/v1/schemas", "cq-mto", nil); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	if r := one.do(t, "GET", "/v1/schemas", "cq-mto", nil); r.status != 429 {
		t.Fatalf("fifth request, on the first gateway: %d; want 429", r.status)
	}
	id, _, _ := exchange.ParseKey(one.keys["cq-rail"])
	one.keys["guesser"], two.keys["guesser"] = "cor."+id+".wrong", "cor."+id+".wrong"
	for _, e := range []*env{one, two, one} {
		if r := e.do(t, "GET", "/v1/inbox", "guesser", nil); r.status != 401 {
			t.Fatalf("a wrong secret: %d; want 401", r.status)
		}
	}
	if r := two.do(t, "GET", "/v1/inbox", "guesser", nil); r.status != 429 {
		t.Fatalf("the fourth wrong secret, on the second gateway: %d; want 429", r.status)
	}
}

// brokenLimiter fails as a Redis that cannot be reached.
type brokenLimiter struct{}

func (brokenLimiter) AllowN(context.Context, string, int) (bool, time.Duration, error) {
	return false, 0, exchange.ErrUnavailable
}
func (brokenLimiter) Blocked(context.Context, string) (bool, error) {
	return false, exchange.ErrUnavailable
}
func (brokenLimiter) Failed(context.Context, string) error { return exchange.ErrUnavailable }

// A shared limiter that fails is stood in for by one in the process: the
// limits still hold, and requests under them still pass.
func TestLimitsWhenTheSharedLimiterFails(t *testing.T) {
	rateLimit429(t, httpapi.Config{RateLimit: 3, RateWindow: time.Hour, RateLimiter: brokenLimiter{}, AuthLimiter: brokenLimiter{}})
	proxy, _ := httpapi.ParseTrustedProxies([]string{testPeer})
	authFailures429(t, httpapi.Config{AuthFailures: 30, TrustedProxies: proxy, AuthLimiter: brokenLimiter{}})
}

func rateLimit429(t *testing.T, cfg httpapi.Config) {
	e := newEnv(t, cfg, nil, nil)
	for i := range 3 {
		if r := e.do(t, "GET", "/v1/schemas", "cq-mto", nil); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	r := e.do(t, "GET", "/v1/schemas", "cq-mto", nil)
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("4th request: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if r := e.do(t, "GET", "/v1/schemas", "cq-rail", nil); r.status != 200 {
		t.Fatalf("another party is limited separately: %d", r.status)
	}
}

// Failed authentications are counted per key id and client address:
// forty wrong secrets for one key from one address slow that pair only.
// Another party at that address, and the key's holder at another address,
// go on; a key with no id counts against its address alone.
func TestAuthFailures429(t *testing.T) {
	for _, l := range limiters {
		t.Run(l.name, func(t *testing.T) {
			proxy, _ := httpapi.ParseTrustedProxies([]string{testPeer})
			cfg := httpapi.Config{AuthFailures: 30, TrustedProxies: proxy}
			if l.new != nil {
				cfg.AuthLimiter = l.new(t, "auth", 30, time.Minute)
			}
			authFailures429(t, cfg)
		})
	}
}

func authFailures429(t *testing.T, cfg httpapi.Config) {
	e := newEnv(t, cfg, nil, nil)
	id, _, _ := exchange.ParseKey(e.keys["cq-mto"])
	e.keys["guesser"] = "cor." + id + ".wrong-secret"
	e.keys["garbage"] = "not-a-corridor-key"
	const attacker, holder = "203.0.113.7", "198.51.100.20"
	from := func(ip string) []string { return []string{"X-Forwarded-For", ip} }
	statuses := map[int]int{}
	for range 40 {
		statuses[e.do(t, "GET", "/v1/inbox", "guesser", nil, from(attacker)...).status]++
	}
	if statuses[401] != 30 || statuses[429] != 10 {
		t.Fatalf("forty wrong secrets: %v; want 30 x 401, then 429", statuses)
	}
	r := e.do(t, "GET", "/v1/inbox", "cq-mto", nil, from(attacker)...)
	if r.status != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("the guessed key from the guessing address: %d, Retry-After %q; want 429", r.status, r.header.Get("Retry-After"))
	}
	if r := e.do(t, "GET", "/v1/inbox", "cq-mto", nil, from(holder)...); r.status != 200 {
		t.Fatalf("the key's holder from another address: %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", "/v1/inbox", "cq-rail", nil, from(attacker)...); r.status != 200 {
		t.Fatalf("another party from the guessing address: %d %s", r.status, r.body)
	}
	for range 40 {
		e.do(t, "GET", "/v1/inbox", "garbage", nil, from(attacker)...)
	}
	if r := e.do(t, "GET", "/v1/inbox", "garbage", nil, from(attacker)...); r.status != 429 {
		t.Fatalf("keys with no id, after forty: %d; want 429 for the address", r.status)
	}
	if r := e.do(t, "GET", "/v1/inbox", "cq-rail", nil, from(attacker)...); r.status != 200 {
		t.Fatalf("a right key from an address that sent garbage: %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", "/v1/inbox", "garbage", nil, from(holder)...); r.status != 401 {
		t.Fatalf("a key with no id from another address: %d", r.status)
	}
}

// testPeer is the peer address of every app.Test request.
const testPeer = "0.0.0.0/32"

// X-Forwarded-For names the client only when the direct peer is a trusted
// proxy, and then it is read from the right: the leftmost entries are
// whatever the client wrote.
func TestForwardedForTrust(t *testing.T) {
	for _, c := range []struct {
		name    string
		trusted []string
		xff     [2]string // of the guesses, and of the later request
		want    int       // the status of the later request
	}{
		{"no trusted proxies: ignored", nil, [2]string{"203.0.113.7", "198.51.100.20"}, 429},
		{"peer not trusted: ignored", []string{"10.0.0.0/8"}, [2]string{"203.0.113.7", "198.51.100.20"}, 429},
		{"trusted peer: another client", []string{testPeer}, [2]string{"203.0.113.7", "198.51.100.20"}, 401},
		{"trusted peer: the same client", []string{testPeer}, [2]string{"203.0.113.7", "203.0.113.7"}, 429},
		{"a spoofed left entry makes no new client", []string{testPeer}, [2]string{"203.0.113.7", "192.0.2.99, 203.0.113.7"}, 429},
		{"trusted hops on the right are skipped", []string{testPeer, "10.1.2.3"},
			[2]string{"203.0.113.7, 10.1.2.3", "198.51.100.20, 10.1.2.3"}, 401},
		{"the client left of the trusted hops", []string{testPeer, "10.1.2.0/24"},
			[2]string{"203.0.113.7, 10.1.2.3", "192.0.2.99, 203.0.113.7, 10.1.2.4"}, 429},
	} {
		t.Run(c.name, func(t *testing.T) {
			trusted, err := httpapi.ParseTrustedProxies(c.trusted)
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, httpapi.Config{AuthFailures: 3, TrustedProxies: trusted}, nil, nil)
			e.keys["guesser"] = "cor.0123456789abcdef.nope"
			for range 3 {
				if r := e.do(t, "GET", "/v1/inbox", "guesser", nil, "X-Forwarded-For", c.xff[0]); r.status != 401 {
					t.Fatalf("guess: %d", r.status)
				}
			}
			if r := e.do(t, "GET", "/v1/inbox", "guesser", nil, "X-Forwarded-For", c.xff[1]); r.status != c.want {
				t.Fatalf("%d, want %d", r.status, c.want)
			}
		})
	}
	if _, err := httpapi.ParseTrustedProxies([]string{"10.0.0.0/33"}); err == nil {
		t.Fatal("a bad prefix was accepted")
	}
}

// With S3 down the submit is 503 and nothing is indexed or queued.
func TestArchiveDown503(t *testing.T) {
	store := storagetest.Local(t)
	down := s3.New("127.0.0.1:1", "corridor", "k", "secretsecret")
	_ = down.Open(context.Background()) // fails: nothing listens there
	signer, _ := exchange.NewSigner(bytes.Repeat([]byte{7}, 32))
	svc := exchange.NewService(down, store, store, store, signer, nil)
	e := &env{srv: httpapi.New(svc, httpapi.Config{}), svc: svc, store: store, keys: map[string]string{}}
	for _, p := range testParties[:1] {
		if _, err := svc.CreateParty(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		e.keys[p.ID], _, _ = svc.IssueKey(context.Background(), p.ID)
	}
	_ = store.CreateParty(context.Background(), testParties[4]) // the consignee
	r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill"))
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("submit with S3 down: %d %s", r.status, r.body)
	}
	mto, _ := store.Party(context.Background(), "cq-mto")
	if _, err := svc.Shipment(context.Background(), mto, "CQNL2026000187", exchange.EventQuery{}); exchange.ErrorCode(err) != exchange.CodeNotFound {
		t.Fatalf("shipment though nothing was archived: %v", err)
	}
	if msgs, _ := store.Pull(context.Background(), "sg-motors", 10, 0); len(msgs) != 0 {
		t.Fatalf("queued %d messages though nothing was archived", len(msgs))
	}
}

// With Redis down the submit is 503 and nobody is told; the retry, once
// Redis is back, delivers it exactly once with the same receipt.
func TestBackendDown503(t *testing.T) {
	down := redis.New("redis://127.0.0.1:1/0")
	_ = down.Open(context.Background()) // fails: nothing listens there
	defer down.Close()
	e := newEnv(t, httpapi.Config{}, nil, down)
	r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill"))
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Fatalf("submit with Redis down: %d %s", r.status, r.body)
	}
	up := newEnv(t, httpapi.Config{}, e.store, nil)
	r2 := up.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill"))
	if r2.status != 200 && r2.status != 201 {
		t.Fatalf("retry: %d %s", r2.status, r2.body)
	}
	msgs, err := e.store.Pull(context.Background(), "sg-motors", 10, 0)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("consignee inbox after retry: %d messages, %v; want 1", len(msgs), err)
	}
}

func TestReadyz503(t *testing.T) {
	down := redis.New("redis://127.0.0.1:1/0")
	_ = down.Open(context.Background())
	defer down.Close()
	e := newEnv(t, httpapi.Config{}, nil, down)
	if r := e.do(t, "GET", "/readyz", "", nil); r.status != 503 {
		t.Fatalf("readyz with Redis down: %d", r.status)
	}
	if r := e.do(t, "GET", "/healthz", "", nil); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
}

func TestSchemasEndpoints(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	r := e.do(t, "GET", "/v1/schemas", "outsider", nil)
	var list struct{ Types []schemas.TypeInfo }
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Types) != 7 {
		t.Fatalf("schemas: %s", r.body)
	}
	for _, ti := range list.Types {
		for _, v := range ti.Versions {
			r := e.do(t, "GET", "/v1/schemas/"+ti.Type+"/"+strconv.Itoa(v), "outsider", nil)
			want, _ := schemas.Schema(ti.Type, v)
			if r.status != 200 || !bytes.Equal(r.body, want) {
				t.Fatalf("%s v%d: %d", ti.Type, v, r.status)
			}
		}
	}
	if r := e.do(t, "GET", "/v1/schemas/one-bill/7", "outsider", nil); r.status != 404 {
		t.Fatalf("unknown version: %d", r.status)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill"))
	r := e.do(t, "GET", "/metrics", "", nil)
	for _, want := range []string{`corridor_http_requests_total{method="POST",route="/v1/documents/:type",status="201"} 1`,
		`corridor_documents_submitted_total{outcome="created",type="one-bill"} 1`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %s\n%s", want, grepLines(string(r.body), "corridor_"))
		}
	}
}

// The OpenAPI document lists exactly the routes the app serves.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	raw, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	param := regexp.MustCompile(`:([a-z]+)`)
	served := map[string]bool{}
	for _, r := range e.srv.App().GetRoutes(true) {
		if r.Method == "HEAD" || r.Method == "USE" || len(r.Handlers) == 0 {
			continue
		}
		served[r.Method+" "+param.ReplaceAllString(r.Path, "{$1}")] = true
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("served but not in openapi.json: %s", k)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("in openapi.json but not served: %s", k)
		}
	}
	if r := e.do(t, "GET", "/openapi.json", "", nil); r.status != 200 || !bytes.Equal(r.body, raw) {
		t.Fatalf("/openapi.json: %d", r.status)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The shipment view: events in time order whatever the order they came in,
// a retracted event marked, customs statuses, the holder; 404 for outsiders.
func TestShipmentView(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	submit := func(party, typ string, body []byte) {
		t.Helper()
		if r := e.do(t, "POST", "/v1/documents/"+typ, party, body); r.status != 201 {
			t.Fatalf("%s by %s: %d %s", typ, party, r.status, r.body)
		}
	}
	submit("cq-mto", "one-bill", example(t, "one-bill"))
	event := func(id, code, when, retracts string) []byte {
		ev := map[string]any{"eventID": id, "eventType": "EQUIPMENT", "eventClassifierCode": "ACT", "eventCode": code,
			"eventDateTime": when, "eventLocation": map[string]any{"UNLocationCode": "CNCKG"}, "publisher": "cq-rail",
			"billReference": "CQNL2026000187", "containerNumber": "CSQU3054383"}
		if retracts != "" {
			ev["retractedEventID"] = retracts
		}
		b, _ := json.Marshal(ev)
		return b
	}
	submit("cq-rail", "tracking-event", event("ev-load-0001", "LOAD", "2026-11-06T06:30:00+08:00", ""))
	submit("cq-rail", "tracking-event", event("ev-gtin-0001", "GTIN", "2026-11-05T16:10:00+08:00", ""))
	submit("cq-rail", "tracking-event", event("ev-gtin-0002", "GTIN", "2026-11-05T16:20:00+08:00", "ev-gtin-0001"))
	submit("cq-autoparts", "customs-declaration", example(t, "customs-declaration"))
	submit("cq-customs", "customs-response", example(t, "customs-response"))

	for _, ref := range []string{"CQNL2026000187", "csqu3054383"} {
		r := e.do(t, "GET", "/v1/shipments/"+ref, "sg-motors", nil)
		var sh exchange.Shipment
		if err := json.Unmarshal(r.body, &sh); err != nil || r.status != 200 {
			t.Fatalf("%s: %d %s", ref, r.status, r.body)
		}
		var codes []string
		for _, ev := range sh.Events {
			codes = append(codes, ev.EventID)
			if ev.Retracted != (ev.EventID == "ev-gtin-0001") {
				t.Errorf("%s retracted = %v", ev.EventID, ev.Retracted)
			}
		}
		if want := []string{"ev-gtin-0001", "ev-gtin-0002", "ev-load-0001"}; !slices.Equal(codes, want) {
			t.Errorf("%s events = %v, want %v", ref, codes, want)
		}
		if len(sh.Customs) != 1 || sh.Customs[0].Status != "RELEASED" || sh.Holder != "cq-autoparts" {
			t.Errorf("%s customs %+v holder %q", ref, sh.Customs, sh.Holder)
		}
		// sg-motors sees that the declaration exists, not its contents.
		for _, d := range sh.Documents {
			if d.Type == "customs-declaration" && (d.Readable || d.SHA256 != "") {
				t.Errorf("%s: the declaration sg-motors did not receive is readable", ref)
			}
		}
	}
	if r := e.do(t, "GET", "/v1/shipments/CQNL2026000187", "outsider", nil); r.status != 404 {
		t.Fatalf("outsider: %d", r.status)
	}
	if r := e.do(t, "GET", "/v1/shipments/NOSUCHBILL", "sg-motors", nil); r.status != 404 {
		t.Fatalf("unknown shipment: %d", r.status)
	}
}

// Different one bills with the same number, submitted at once: exactly one
// is taken; the others get 409 and are neither archived nor sent.
func TestConcurrentSameBillNumber(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	const n = 8
	statuses := make(chan int, n)
	for i := range n {
		body := bytes.Replace(example(t, "one-bill"), []byte(`"CQ2611873"`), []byte(`"SEAL-`+strconv.Itoa(i)+`"`), 1)
		go func() { statuses <- e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", body).status }()
	}
	count := map[int]int{}
	for range n {
		count[<-statuses]++
	}
	if count[201] != 1 || count[409] != n-1 {
		t.Fatalf("statuses = %v; want one 201 and %d 409", count, n-1)
	}
	archived := 0
	_ = e.store.Walk(context.Background(), func(exchange.Record) error { archived++; return nil })
	msgs, _ := e.store.Pull(context.Background(), "sg-motors", 100, 0)
	if archived != 1 || len(msgs) != 1 {
		t.Fatalf("archived %d, consignee got %d; want 1 and 1", archived, len(msgs))
	}
}

// The admin API takes the admin key whatever the spelling of the path: a
// party key must not reach it through /V1/ADMIN/... or a trailing slash.
func TestAdminPathVariantsNeedTheAdminKey(t *testing.T) {
	e := newEnv(t, httpapi.Config{AdminKey: "admin-key-0123456789abcdef"}, nil, nil)
	body := []byte(`{"id":"evil-party","name":"Evil","roles":["customs"],"country":"CN"}`)
	for _, path := range []string{"/v1/admin/parties", "/V1/ADMIN/parties", "/v1/Admin/parties", "/v1/admin/parties/", "/v1//admin/parties"} {
		r := e.do(t, "POST", path, "cq-mto", body)
		if r.status == 201 {
			t.Fatalf("POST %s with a party key created a party", path)
		}
	}
	if _, err := e.store.Party(context.Background(), "evil-party"); err == nil {
		t.Fatal("a party key created a party")
	}
	e.keys["admin"] = "admin-key-0123456789abcdef"
	if r := e.do(t, "POST", "/v1/admin/parties", "admin", body); r.status != 201 {
		t.Fatalf("admin key: %d %s", r.status, r.body)
	}
}

// Bytes changed in the archive behind the gateway's back are not served.
func TestCorruptedArchiveIsNotServed(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill"))
	var rc exchange.Receipt
	if err := json.Unmarshal(r.body, &rc); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(e.store.Dir, "archive", rc.ID[:2], rc.ID+".body")
	if err := os.WriteFile(file, bytes.Replace(example(t, "one-bill"), []byte("PRE"), []byte("COL"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.do(t, "GET", "/v1/documents/"+rc.ID, "cq-mto", nil); r.status != 500 || bytes.Contains(r.body, []byte("COL")) {
		t.Fatalf("corrupted document: %d %s", r.status, r.body)
	}
}

// The admin list of parties is paged by id: following next walks every
// party once, in order, and the last page (full or not) has no next.
func TestAdminPartiesPaged(t *testing.T) {
	e := newEnv(t, httpapi.Config{AdminKey: "admin-key-0123456789abcdef"}, nil, nil)
	e.keys["admin"] = "admin-key-0123456789abcdef"
	var want []string
	for _, p := range testParties {
		want = append(want, p.ID)
	}
	slices.Sort(want)
	type page struct {
		Parties []exchange.Party `json:"parties"`
		Next    *string          `json:"next"`
	}
	walk := func(limit int) []string {
		var got []string
		cursor := ""
		for range len(want) + 1 {
			r := e.do(t, "GET", fmt.Sprintf("/v1/admin/parties?limit=%d&cursor=%s", limit, cursor), "admin", nil)
			var p page
			if r.status != 200 || json.Unmarshal(r.body, &p) != nil {
				t.Fatalf("limit %d, cursor %q: %d %s", limit, cursor, r.status, r.body)
			}
			if len(p.Parties) > limit || (p.Next != nil && len(p.Parties) != limit) || (cursor != "" && len(p.Parties) == 0) {
				t.Fatalf("limit %d: a page of %d, next %v", limit, len(p.Parties), p.Next)
			}
			for _, q := range p.Parties {
				got = append(got, q.ID)
			}
			if p.Next == nil {
				return got
			}
			cursor = *p.Next
		}
		t.Fatalf("limit %d: more pages than parties", limit)
		return nil
	}
	for _, limit := range []int{1, 3, len(want), len(want) + 1} {
		if got := walk(limit); !slices.Equal(got, want) {
			t.Errorf("limit %d walked %v, want %v", limit, got, want)
		}
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "cursor=bm9wZQ", "cursor=%25%25"} {
		if r := e.do(t, "GET", "/v1/admin/parties?"+q, "admin", nil); r.status != 400 {
			t.Errorf("?%s: %d %s, want 400", q, r.status, r.body)
		}
	}
}
