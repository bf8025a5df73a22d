package webhook_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/landsea/corridor/adapters/routing"
	"github.com/landsea/corridor/adapters/webhook"
	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/local"
	"github.com/landsea/corridor/storage/redis"
	"github.com/landsea/corridor/storage/storagetest"
)

const demo = "../../deploy/demo"

// receiver is a webhook endpoint that answers with the statuses it is
// given, in turn (then 204), and keeps what it received.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	got      []delivery
	srv      *httptest.Server
}

type delivery struct {
	header http.Header
	body   []byte
	status int
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		status := http.StatusNoContent
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.got = append(r.got, delivery{header: req.Header.Clone(), body: body, status: status})
		r.mu.Unlock()
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

type env struct {
	svc    *exchange.Service
	store  *local.Store
	pusher *webhook.Pusher
}

func newEnv(t *testing.T, queue exchange.Queue, cfg webhook.Config) *env {
	t.Helper()
	store := storagetest.Local(t)
	if queue == nil {
		queue = store
	}
	signer, _ := exchange.NewSigner(bytes.Repeat([]byte{5}, 32))
	ix := exchange.Index(store)
	if q, ok := queue.(exchange.Index); ok {
		ix = q
	}
	svc := exchange.NewService(store, queue, ix, store, signer, nil)
	svc.SetRules(routing.Default())
	var parties []exchange.Party
	raw, _ := os.ReadFile(filepath.Join(demo, "parties.json"))
	if err := json.Unmarshal(raw, &parties); err != nil {
		t.Fatal(err)
	}
	for _, p := range parties {
		if _, err := svc.CreateParty(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.FirstRetry == 0 {
		cfg.FirstRetry, cfg.MaxBackoff = 20*time.Millisecond, 40*time.Millisecond
	}
	cfg.AllowHTTP, cfg.Interval = true, 10*time.Millisecond
	p, err := webhook.New(svc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc.URLCheck = p.CheckURL
	e := &env{svc: svc, store: store, pusher: p}
	e.submit(t, "cq-mto", "one-bill", "documents/01-one-bill.json")
	return e
}

func (e *env) party(t *testing.T, id string) exchange.Party {
	p, err := e.store.Party(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *env) submit(t *testing.T, sender, typ, file string) exchange.Receipt {
	t.Helper()
	body, err := os.ReadFile(filepath.Join(demo, file))
	if err != nil {
		t.Fatal(err)
	}
	rc, _, err := e.svc.Submit(context.Background(), e.party(t, sender), exchange.Submission{Type: typ, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

// until runs push rounds until cond holds, or fails the test after 20 s.
func (e *env) until(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 20 s of push rounds")
		}
		e.pusher.Round(context.Background())
		time.Sleep(5 * time.Millisecond)
	}
}

// A document is pushed, signed (HMAC with the subscription's secret and
// Ed25519 with the receipt key); the receiver fails twice with 500 and
// takes the third; then a pull finds nothing, and the log shows the three.
func TestPushRetriesUntilTaken(t *testing.T) {
	e := newEnv(t, nil, webhook.Config{AllowPrivate: true})
	rcv := newReceiver(t, 500, 500)
	consignee := e.party(t, "sg-motors")
	// Drain what the consignee had before subscribing, by pull.
	if msgs, _ := e.svc.Pull(context.Background(), consignee, 100, 0); len(msgs) > 0 {
		var ids []string
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		_, _ = e.svc.Ack(context.Background(), consignee, ids)
	}
	sub, secret, err := e.svc.Subscribe(context.Background(), consignee, exchange.SubscriptionRequest{URL: rcv.srv.URL + "/hooks"})
	if err != nil || !strings.HasPrefix(secret, "whsec_") || sub.Secrets != nil {
		t.Fatalf("subscribe: %+v %q %v", sub, secret, err)
	}
	rc := e.submit(t, "cq-rail", "tracking-event", "documents/05-event-gate-in-chongqing.json")
	e.until(t, func() bool { return len(rcv.deliveries()) >= 3 })
	ds := rcv.deliveries()
	if len(ds) != 3 || ds[2].status != 204 {
		t.Fatalf("%d deliveries: %+v", len(ds), ds)
	}
	for _, d := range ds {
		if d.header.Get("webhook-id") != rc.ID {
			t.Fatalf("webhook-id %q, want the document id %s", d.header.Get("webhook-id"), rc.ID)
		}
		if err := webhook.Verify(secret, e.svc.Signer.PublicKey(), d.header, d.body, time.Now()); err != nil {
			t.Fatalf("signature: %v", err)
		}
		if err := webhook.Verify("whsec_"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)), nil, d.header, d.body, time.Now()); err == nil {
			t.Fatal("a delivery verified with another secret")
		}
		var im exchange.InboxMessage
		if err := json.Unmarshal(d.body, &im); err != nil || im.ID != rc.ID || len(im.Document) == 0 {
			t.Fatalf("body: %s", d.body)
		}
	}
	e.until(t, func() bool { // the ack follows the round that got the 2xx
		msgs, _, _ := e.store.Peek(context.Background(), "sg-motors", "", 10)
		return len(msgs) == 0
	})
	if msgs, _ := e.svc.Pull(context.Background(), consignee, 10, 0); len(msgs) != 0 {
		t.Fatalf("pull after the push was taken: %d messages", len(msgs))
	}
	log, _ := e.svc.Deliveries(context.Background(), consignee, sub.ID, 10)
	if len(log) != 3 || log[0].Status != 204 || log[2].Status != 500 || log[2].Next == nil {
		t.Fatalf("delivery log: %+v", log)
	}
	// Another party sees nothing of the subscription.
	if _, err := e.svc.Deliveries(context.Background(), e.party(t, "sg-bank"), sub.ID, 10); exchange.ErrorCode(err) != exchange.CodeNotFound {
		t.Fatalf("another party's look at the log: %v", err)
	}
}

// A receiver that stays down longer than the retries last: push gives up,
// and the message is in the pull inbox.
func TestPushGivesUpToPull(t *testing.T) {
	e := newEnv(t, nil, webhook.Config{AllowPrivate: true, MaxAge: 200 * time.Millisecond})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := "http://" + ln.Addr().String() + "/down"
	ln.Close() // nothing listens there now
	consignee := e.party(t, "sg-motors")
	sub, _, err := e.svc.Subscribe(context.Background(), consignee, exchange.SubscriptionRequest{URL: down, Types: []string{"tracking-event"}})
	if err != nil {
		t.Fatal(err)
	}
	rc := e.submit(t, "cq-rail", "tracking-event", "documents/05-event-gate-in-chongqing.json")
	e.until(t, func() bool {
		st, _ := e.store.PushState(context.Background(), sub.ID, rc.ID)
		return st.GaveUp
	})
	msgs, err := e.svc.Pull(context.Background(), consignee, 100, 0)
	found := false
	for _, m := range msgs {
		found = found || m.ID == rc.ID
	}
	if err != nil || !found {
		t.Fatalf("the message push gave up on is not in the pull inbox: %v", err)
	}
}

// 410 disables the subscription; Retry-After on 503 is honoured.
func TestPushGoneAndRetryAfter(t *testing.T) {
	e := newEnv(t, nil, webhook.Config{AllowPrivate: true, FirstRetry: 20 * time.Millisecond, MaxBackoff: 5 * time.Second})
	gone := newReceiver(t, 410)
	busy := newReceiver(t, 503)
	bank, rail := e.party(t, "sg-bank"), e.party(t, "cq-mto")
	g, _, err := e.svc.Subscribe(context.Background(), bank, exchange.SubscriptionRequest{URL: gone.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := e.svc.Subscribe(context.Background(), rail, exchange.SubscriptionRequest{URL: busy.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	rc := e.submit(t, "cq-rail", "tracking-event", "documents/05-event-gate-in-chongqing.json")
	// Wait until both answers were handled (the rounds run in the background).
	e.until(t, func() bool {
		s, _ := e.svc.MySubscription(context.Background(), bank, g.ID)
		st, _ := e.store.PushState(context.Background(), b.ID, rc.ID)
		return len(gone.deliveries()) >= 1 && s.Disabled && st.Attempts >= 1
	})
	if s, _ := e.svc.MySubscription(context.Background(), bank, g.ID); s.DisabledReason != "the receiver answered 410 Gone" {
		t.Fatalf("disabled for %q", s.DisabledReason)
	}
	st, _ := e.store.PushState(context.Background(), b.ID, rc.ID)
	if st.Attempts != 1 || time.Until(st.Next) < 500*time.Millisecond {
		t.Fatalf("after a 503 with Retry-After: 1: %+v (next in %s)", st, time.Until(st.Next))
	}
}

// Subscriptions to loopback, private and link-local addresses are refused
// unless allowed, at subscribe time and again when connecting (a name
// that resolved to a public address may resolve elsewhere later).
func TestPushRefusesPrivateDestinations(t *testing.T) {
	e := newEnv(t, nil, webhook.Config{Resolver: fakeResolver{"rebind.example": "10.0.0.1", "public.example": "93.184.215.14"}})
	party := e.party(t, "sg-motors")
	for _, u := range []string{"http://127.0.0.1/", "http://rebind.example/hook", "http://[::1]/", "http://169.254.169.254/latest", "ftp://public.example/", "https://user:pw@public.example/",
		"http://100.64.0.1/", "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::1]/", "http://198.18.0.1/", "http://240.0.0.1/",
		"http://255.255.255.255/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://[fd00::1]/"} {
		if _, _, err := e.svc.Subscribe(context.Background(), party, exchange.SubscriptionRequest{URL: u}); exchange.ErrorCode(err) != exchange.CodeInvalid {
			t.Errorf("subscribe to %s: %v, want invalid", u, err)
		}
	}
	if _, _, err := e.svc.Subscribe(context.Background(), party, exchange.SubscriptionRequest{URL: "https://public.example/hook"}); err != nil {
		t.Fatalf("a public destination: %v", err)
	}
	// At connection: a receiver on loopback, reached by a subscription
	// stored as if its name had resolved elsewhere, is not connected to.
	rcv := newReceiver(t)
	sub, _, err := e.svc.Subscribe(context.Background(), party, exchange.SubscriptionRequest{URL: "https://public.example/x"})
	if err != nil {
		t.Fatal(err)
	}
	sub.URL = rcv.srv.URL
	if err := e.store.PutSubscription(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
	e.pusher.Refresh()
	e.submit(t, "cq-rail", "tracking-event", "documents/05-event-gate-in-chongqing.json")
	e.until(t, func() bool {
		log, _ := e.store.Attempts(context.Background(), sub.ID, 1)
		return len(log) > 0
	})
	if log, _ := e.store.Attempts(context.Background(), sub.ID, 1); !strings.Contains(log[0].Error, "not a public address") || len(rcv.deliveries()) != 0 {
		t.Fatalf("a connection to loopback: %+v, receiver got %d", log, len(rcv.deliveries()))
	}
}

type fakeResolver map[string]string

func (f fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	if ip, ok := f[host]; ok {
		return []net.IPAddr{{IP: net.ParseIP(ip)}}, nil
	}
	return net.DefaultResolver.LookupIPAddr(context.Background(), host)
}

// Two gateways on one Redis push each message once.
func TestTwoPushersPushEachMessageOnce(t *testing.T) {
	r := redis.New(testenv.RedisURL(t))
	r.Prefix = testenv.Prefix()
	if err := r.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	e := newEnv(t, r, webhook.Config{AllowPrivate: true})
	second, err := webhook.New(e.svc, webhook.Config{AllowPrivate: true, AllowHTTP: true, Interval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rcv := newReceiver(t)
	if _, _, err := e.svc.Subscribe(context.Background(), e.party(t, "sg-motors"), exchange.SubscriptionRequest{URL: rcv.srv.URL}); err != nil {
		t.Fatal(err)
	}
	const n = 12
	for i := range n {
		body, _ := os.ReadFile(filepath.Join(demo, "documents/05-event-gate-in-chongqing.json"))
		body = bytes.Replace(body, []byte("cqrail-gtin-CSQU3054383-20261105"), []byte("twice-"+string(rune('a'+i))+"-CSQU3054383"), 1)
		if _, _, err := e.svc.Submit(context.Background(), e.party(t, "cq-rail"), exchange.Submission{Type: "tracking-event", Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, p := range []*webhook.Pusher{e.pusher, second} {
		wg.Add(1)
		go func() { defer wg.Done(); p.Run(ctx) }()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		msgs, _, _ := r.Peek(context.Background(), "sg-motors", "", 100)
		if len(msgs) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	count := map[string]int{}
	for _, d := range rcv.deliveries() {
		count[d.header.Get("webhook-id")]++
	}
	dups := 0
	for _, c := range count {
		dups += c - 1
	}
	// The one bill's message and the n events: each once.
	if len(count) != n+1 || dups != 0 {
		t.Fatalf("%d messages pushed, %d duplicates; want %d and 0", len(count), dups, n+1)
	}
	t.Logf("two pushers on one Redis: %d messages pushed, %d duplicates", len(count), dups)
}

// A shipment's messages are pushed in order: a later one waits while an
// earlier one of its shipment is failing.
func TestPushKeepsAShipmentInOrder(t *testing.T) {
	e := newEnv(t, nil, webhook.Config{AllowPrivate: true, InFlight: 4})
	rcv := newReceiver(t, 500, 500)
	consignee := e.party(t, "sg-motors")
	if msgs, _ := e.svc.Pull(context.Background(), consignee, 100, 0); len(msgs) > 0 { // start from an empty inbox
		var ids []string
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		_, _ = e.svc.Ack(context.Background(), consignee, ids)
	}
	if _, _, err := e.svc.Subscribe(context.Background(), consignee, exchange.SubscriptionRequest{URL: rcv.srv.URL}); err != nil {
		t.Fatal(err)
	}
	first := e.submit(t, "cq-rail", "tracking-event", "documents/05-event-gate-in-chongqing.json")
	second := e.submit(t, "cq-rail", "tracking-event", "documents/06-event-loaded-on-train.json")
	e.until(t, func() bool {
		for _, d := range rcv.deliveries() {
			if d.header.Get("webhook-id") == second.ID {
				return true
			}
		}
		return false
	})
	var order []string
	for _, d := range rcv.deliveries() {
		id := map[string]string{first.ID: "first", second.ID: "second"}[d.header.Get("webhook-id")]
		order = append(order, id+":"+strconv.Itoa(d.status))
	}
	if want := []string{"first:500", "first:500", "first:204", "second:204"}; !slices.Equal(order, want) {
		t.Fatalf("deliveries %v, want %v", order, want)
	}
}

// A message whose body the archive lost cannot be pushed: push gives up on
// it at once (logged as an attempt), the shipment's next message is pushed,
// and the lost one stays in the inbox.
func TestPushPassesOverALostDocument(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil, webhook.Config{AllowPrivate: true})
	rcv := newReceiver(t)
	consignee := e.party(t, "sg-motors")
	if msgs, _ := e.svc.Pull(ctx, consignee, 100, 0); len(msgs) > 0 { // start from an empty inbox
		var ids []string
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		_, _ = e.svc.Ack(ctx, consignee, ids)
	}
	sub, _, err := e.svc.Subscribe(ctx, consignee, exchange.SubscriptionRequest{URL: rcv.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	lost := exchange.Message{DocumentID: exchange.DocumentID("cq-rail", "lost", nil), Type: "tracking-event", Sender: "cq-rail",
		SHA256: "00", ReceivedAt: time.Now(), Ref: "CQNL2026000187"} // queued, never archived
	if err := e.store.Enqueue(ctx, lost, consignee.ID); err != nil {
		t.Fatal(err)
	}
	next := e.submit(t, "cq-rail", "tracking-event", "documents/05-event-gate-in-chongqing.json")
	e.pusher.RoundForTest(ctx) // one round: the lost message does not hold the next back even for a round
	if !slices.ContainsFunc(rcv.deliveries(), func(d delivery) bool { return d.header.Get("webhook-id") == next.ID }) {
		t.Fatalf("after one round the shipment's next message was not pushed (deliveries %d)", len(rcv.deliveries()))
	}
	for _, d := range rcv.deliveries() {
		if id := d.header.Get("webhook-id"); id != next.ID {
			t.Errorf("pushed %s, want only the shipment's next message", id)
		}
	}
	if st, err := e.store.PushState(ctx, sub.ID, lost.DocumentID); err != nil || !st.GaveUp || st.Attempts != 1 {
		t.Errorf("push state of the lost message %+v, %v; want given up after one attempt", st, err)
	}
	log, err := e.svc.Deliveries(ctx, consignee, sub.ID, 10)
	if err != nil || !slices.ContainsFunc(log, func(a exchange.Attempt) bool {
		return a.MessageID == lost.DocumentID && strings.Contains(a.Error, "not found")
	}) {
		t.Errorf("the log %+v (%v) has no attempt for the lost message saying why", log, err)
	}
	if n, err := e.svc.Ack(ctx, consignee, []string{lost.DocumentID}); err != nil || n != 1 {
		t.Errorf("the lost message: ack = %d, %v; want it still in the inbox (1)", n, err)
	}
}
