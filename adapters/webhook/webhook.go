// Package webhook pushes parties' inboxes to their subscriptions, as
// Standard Webhooks (standardwebhooks.com) describes: a POST of the
// message as a pull returns it, with webhook-id (the message id, which
// receivers dedupe on), webhook-timestamp and webhook-signature (v1: HMAC-
// SHA256 with the subscription's secret; v1a: Ed25519 with the gateway's
// receipt key). A 2xx acks the message; anything else is retried with
// exponential backoff and jitter, Retry-After honoured, until MaxAge, after
// which push gives up and the message waits for pull. 410 disables the
// subscription. Gateways sharing a queue push each party's inbox from one
// of them at a time (a lease), so each message is pushed once, and a
// gateway that dies leaves what it had not acked to another.
package webhook

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/landsea/corridor/exchange"
)

// Config tunes the pusher; zero values take the defaults of New.
type Config struct {
	AllowHTTP    bool          // allow http:// URLs (tests, the demo)
	AllowPrivate bool          // allow loopback, private, link-local addresses (tests, the demo)
	MaxAge       time.Duration // give up pushing a message after this long (72h)
	InFlight     int           // requests in flight per subscription (4)
	Timeout      time.Duration // per request (10s)
	FirstRetry   time.Duration // the first retry comes within this (5s)
	MaxBackoff   time.Duration // retries come at least this often (1h)
	Interval     time.Duration // how often inboxes are looked at (1s)
	Resolver     Resolver      // looks up a URL's host (net.DefaultResolver)
	Logger       *slog.Logger
}

// Resolver looks up host names.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Pusher pushes inboxes to subscriptions.
type Pusher struct {
	svc    *exchange.Service
	q      exchange.PushQueue
	cfg    Config
	client *http.Client
	holder string
	log    *slog.Logger

	subsMu  sync.Mutex
	subs    []exchange.Subscription
	subsAt  time.Time
	metrics metrics

	busyMu  sync.Mutex
	busy    map[string]bool // parties being drained now
	running sync.WaitGroup
	replays sync.Map // subscription ids being replayed
}

type metrics struct {
	deliveries *prometheus.CounterVec
	retrying   *prometheus.GaugeVec
	oldest     *prometheus.GaugeVec
}

// New returns a pusher for svc; it does nothing until Run.
func New(svc *exchange.Service, cfg Config) (*Pusher, error) {
	q, err := svc.PushQueue()
	if err != nil {
		return nil, err
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = 72 * time.Hour
	}
	if cfg.InFlight < 1 {
		cfg.InFlight = 4
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.FirstRetry == 0 {
		cfg.FirstRetry = 5 * time.Second
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = time.Hour
	}
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	p := &Pusher{svc: svc, q: q, cfg: cfg, holder: hex.EncodeToString(id[:]), log: cfg.Logger, busy: map[string]bool{}}
	p.client = &http.Client{
		Timeout: cfg.Timeout,
		// Redirects are not followed: a receiver cannot send the gateway elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{
			// The address is checked as it is dialled, after DNS: a name
			// that resolves to a private address now (DNS rebinding) is refused.
			DialContext:           (&net.Dialer{Timeout: cfg.Timeout, Control: p.control}).DialContext,
			TLSHandshakeTimeout:   cfg.Timeout,
			ResponseHeaderTimeout: cfg.Timeout,
			MaxIdleConnsPerHost:   cfg.InFlight,
			Proxy:                 nil,
		},
	}
	p.metrics = metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "corridor_webhook_deliveries_total",
			Help: "Webhook delivery attempts by outcome (delivered, failed, gone, gave_up)."}, []string{"outcome"}),
		retrying: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "corridor_webhook_retry_queue",
			Help: "Messages waiting for a retry, by subscription."}, []string{"subscription"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "corridor_webhook_oldest_undelivered_seconds",
			Help: "Age of the oldest message not yet pushed, by subscription."}, []string{"subscription"}),
	}
	return p, nil
}

// Register adds the pusher's metrics to a registry.
func (p *Pusher) Register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{p.metrics.deliveries, p.metrics.retrying, p.metrics.oldest} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// CheckURL is the policy for a subscription's URL: https (or http when
// allowed), a host, and no address the gateway must not call.
func (p *Pusher) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.User != nil:
		return errors.New("an absolute URL with a host and no user info, e.g. https://tms.example.com/corridor")
	case u.Scheme != "https" && !(u.Scheme == "http" && p.cfg.AllowHTTP):
		return errors.New("an https URL (this gateway does not push over http)")
	}
	if p.cfg.AllowPrivate {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	// One message whether the name does not resolve or resolves to an
	// address the gateway does not call: the answer is no oracle of
	// internal names.
	refused := fmt.Errorf("the host %s does not resolve to public addresses only", u.Hostname())
	addrs, err := p.cfg.Resolver.LookupIPAddr(rctx, u.Hostname())
	if err != nil || len(addrs) == 0 {
		return refused
	}
	for _, a := range addrs {
		if forbidden(a.IP) {
			return refused
		}
	}
	return nil
}

// notPublic are the special-purpose ranges (RFC 6890 and its updates)
// beside loopback, private, link-local and multicast: shared address
// space (CGNAT), benchmarking, reserved, broadcast, documentation, and
// the IPv6 ranges that carry an IPv4 address inside (NAT64, 6to4,
// Teredo), which could lead back to one of the others.
var notPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{"0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32",
		"64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "2001::/32", "2001:db8::/32", "100::/64", "fc00::/7"} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

func forbidden(ip net.IP) bool {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return true
	}
	a = a.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsMulticast() || a.IsUnspecified() || a.IsInterfaceLocalMulticast() {
		return true
	}
	for _, p := range notPublic {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (p *Pusher) control(network, address string, _ syscall.RawConn) error {
	if p.cfg.AllowPrivate {
		return nil
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || forbidden(ip) {
		return fmt.Errorf("refusing to connect to %s: not a public address", host)
	}
	return nil
}

// Run pushes until ctx ends, then waits for the drains in flight.
func (p *Pusher) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	defer p.running.Wait()
	for {
		p.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Pusher) subscriptions(ctx context.Context) []exchange.Subscription {
	p.subsMu.Lock()
	defer p.subsMu.Unlock()
	if time.Since(p.subsAt) > 5*p.cfg.Interval {
		subs, err := p.svc.ActiveSubscriptions(ctx)
		if err != nil {
			p.log.Warn("webhook: read subscriptions", "err", err)
			return p.subs
		}
		p.subs, p.subsAt = subs, time.Now()
	}
	return p.subs
}

// Refresh makes the next round read the subscriptions again.
func (p *Pusher) Refresh() {
	p.subsMu.Lock()
	p.subsAt = time.Time{}
	p.subsMu.Unlock()
}

// parallelParties bounds the inboxes one gateway drains at once.
const parallelParties = 16

// Round looks at every subscribed inbox once.
func (p *Pusher) Round(ctx context.Context) {
	byParty := map[string][]exchange.Subscription{}
	for _, s := range p.subscriptions(ctx) {
		byParty[s.Party] = append(byParty[s.Party], s)
	}
	// Each party is drained by a goroutine of its own, started when none
	// is draining it already: a slow receiver holds up only its own party.
	// At most parallelParties run at once.
	for party, subs := range byParty {
		if ctx.Err() != nil {
			return
		}
		p.busyMu.Lock()
		if p.busy[party] || len(p.busy) >= parallelParties {
			p.busyMu.Unlock()
			continue
		}
		p.busy[party] = true
		p.busyMu.Unlock()
		p.running.Add(1)
		go func() {
			defer func() {
				p.busyMu.Lock()
				delete(p.busy, party)
				p.busyMu.Unlock()
				p.running.Done()
			}()
			ttl := 3*p.cfg.Timeout + 3*p.cfg.Interval
			if ok, err := p.q.Lease(ctx, "push:"+party, p.holder, ttl); err != nil || !ok {
				return // another gateway pushes this inbox
			}
			rctx, cancel := context.WithTimeout(ctx, ttl-p.cfg.Timeout) // done before the lease runs out
			defer cancel()
			p.drain(rctx, party, subs)
		}()
	}
}

// drain pushes a party's waiting messages to its subscriptions: per
// subscription up to InFlight at once, one shipment's messages in order
// (a later one waits while an earlier one of its shipment is failing),
// then acks each message every matching subscription took.
func (p *Pusher) drain(ctx context.Context, party string, subs []exchange.Subscription) {
	// Page through the inbox, oldest first, reading each message's state
	// for each subscription that wants it once a round. Messages none
	// wants (its types or refs), or that push gave up on, wait for pull
	// and are passed over, however many they are.
	work := map[string][]item{} // by subscription: what it has still to take
	matched := map[string]int{} // by message: how many subscriptions want it
	took := map[string]int{}    // by message: how many of those took it
	var order []string          // the messages wanted, oldest first
	after, wanted := "", 0
	for pages := 0; pages < maxPages && wanted < maxCandidates; pages++ {
		page, next, err := p.q.Peek(ctx, party, after, 1000)
		if err != nil {
			p.log.Warn("webhook: peek", "party", party, "err", err)
			return
		}
		for _, m := range page {
			open := false
			for _, s := range subs {
				if !s.Matches(m) {
					continue
				}
				matched[m.DocumentID]++
				st, err := p.q.PushState(ctx, s.ID, m.DocumentID)
				switch {
				case err == nil && st.Done:
					took[m.DocumentID]++ // taken in a round whose ack did not happen
				case err == nil && st.GaveUp:
				default:
					work[s.ID] = append(work[s.ID], item{m: m, st: st, err: err})
					open = true
				}
			}
			if matched[m.DocumentID] > 0 {
				order = append(order, m.DocumentID)
			}
			if open {
				wanted++
			}
		}
		if len(page) < 1000 {
			break
		}
		after = next
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, sub := range subs {
		wg.Go(func() {
			for _, id := range p.pushSub(ctx, sub, work[sub.ID]) {
				mu.Lock()
				took[id]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var acks []string
	for _, id := range order {
		if took[id] == matched[id] {
			acks = append(acks, id)
		}
	}
	if len(acks) == 0 {
		return
	}
	if _, err := p.svc.Queue.Ack(ctx, party, acks); err != nil {
		p.log.Warn("webhook: ack", "party", party, "err", err)
		return
	}
	for _, id := range acks { // the states of acked messages are no longer needed
		for _, s := range subs {
			_ = p.q.SetPushState(ctx, s.ID, id, exchange.PushState{})
		}
	}
}

// item is a message a subscription has still to take, with its state as
// read this round (err: the state could not be read).
type item struct {
	m   exchange.Message
	st  exchange.PushState
	err error
}

// One round looks at no more than maxPages pages of 1000 waiting messages
// of an inbox, and pushes no more than maxCandidates of them.
const (
	maxPages      = 20
	maxCandidates = 500
)

// pushSub pushes what one subscription has still to take: InFlight
// workers, each taking the shipments that hash to it, in order. It
// returns the messages taken.
func (p *Pusher) pushSub(ctx context.Context, sub exchange.Subscription, items []item) []string {
	lanes := make([][]item, p.cfg.InFlight)
	for _, it := range items {
		h := fnv.New32a()
		h.Write([]byte(it.m.Ref))
		i := int(h.Sum32() % uint32(p.cfg.InFlight))
		lanes[i] = append(lanes[i], it)
	}
	var retrying int64
	var oldest time.Time
	var taken []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, lane := range lanes {
		wg.Go(func() {
			blocked := map[string]bool{}
			for _, it := range lane {
				m := it.m
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				if oldest.IsZero() || m.ReceivedAt.Before(oldest) {
					oldest = m.ReceivedAt
				}
				mu.Unlock()
				outcome := pushRetry
				switch {
				case it.err != nil:
					blocked[m.Ref] = true // unknown: its shipment's later messages wait, not overtake it
					continue
				case blocked[m.Ref]:
					continue
				case !time.Now().Before(it.st.Next):
					outcome = p.push(ctx, sub, m, it.st)
				}
				switch outcome {
				case pushTaken:
					mu.Lock()
					taken = append(taken, m.DocumentID)
					mu.Unlock()
				case pushRetry:
					blocked[m.Ref] = true // its shipment waits for it
					mu.Lock()
					retrying++
					mu.Unlock()
				} // pushGaveUp: it waits in the inbox for pull; its shipment goes on
			}
		})
	}
	wg.Wait()
	p.metrics.retrying.WithLabelValues(sub.ID).Set(float64(retrying))
	if oldest.IsZero() {
		p.metrics.oldest.WithLabelValues(sub.ID).Set(0)
	} else {
		p.metrics.oldest.WithLabelValues(sub.ID).Set(time.Since(oldest).Seconds())
	}
	return taken
}

// What came of an attempt to push a message.
type pushOutcome int

const (
	pushRetry  pushOutcome = iota // not taken: tried again later, its shipment waits
	pushTaken                     // the receiver took it
	pushGaveUp                    // given up: it waits in the inbox for pull
)

// push makes one attempt and records it.
func (p *Pusher) push(ctx context.Context, sub exchange.Subscription, m exchange.Message, st exchange.PushState) pushOutcome {
	im, err := p.svc.InboxMessageOf(ctx, m)
	if err != nil && !errors.Is(err, exchange.ErrNotFound) {
		p.log.Warn("webhook: read message", "id", m.DocumentID, "err", err)
		return pushRetry // the archive does not answer: tried again next round
	}
	now := time.Now()
	if st.First.IsZero() {
		st.First = now
	}
	st.Attempts++
	a := exchange.Attempt{MessageID: m.DocumentID, At: now.UTC()}
	if err != nil {
		// The archive lost its body: no attempt can succeed. Push gives up
		// at once, so that its shipment's later messages are not held
		// behind it; it stays in the inbox, where pull passes over it too.
		p.log.Error("webhook: the archive lost a document", "id", m.DocumentID, "err", err)
		st.GaveUp, a.Error = true, err.Error()
		p.record(ctx, sub, m, st, a, "gave_up")
		return pushGaveUp
	}
	body, _ := json.Marshal(im)
	status, retryAfter, err := p.send(ctx, sub, m.DocumentID, body, now)
	a.DurationMS = time.Since(now).Milliseconds()
	a.Status = status
	if err != nil {
		a.Error = err.Error()
	}
	outcome := "failed"
	switch {
	case err == nil && status >= 200 && status < 300:
		st.Done, outcome = true, "delivered"
	case status == http.StatusGone:
		outcome = "gone"
		if err := p.svc.DisableSubscription(ctx, sub.ID, "the receiver answered 410 Gone"); err != nil {
			p.log.Warn("webhook: disable", "subscription", sub.ID, "err", err)
		}
		p.Refresh()
	case now.Sub(st.First) >= p.cfg.MaxAge:
		st.GaveUp, outcome = true, "gave_up" // it waits in the inbox for pull
	default:
		next := now.Add(max(p.backoff(st.Attempts), retryAfter))
		st.Next = next
		a.Next = &next
	}
	p.record(ctx, sub, m, st, a, outcome)
	switch {
	case st.Done:
		return pushTaken
	case st.GaveUp:
		return pushGaveUp
	}
	return pushRetry
}

// record keeps an attempt's outcome: the message's state, the
// subscription's log and the metrics.
func (p *Pusher) record(ctx context.Context, sub exchange.Subscription, m exchange.Message, st exchange.PushState, a exchange.Attempt, outcome string) {
	p.metrics.deliveries.WithLabelValues(outcome).Inc()
	if err := p.q.SetPushState(ctx, sub.ID, m.DocumentID, st); err != nil {
		p.log.Warn("webhook: state", "err", err)
	}
	if err := p.q.LogAttempt(ctx, sub.ID, a); err != nil {
		p.log.Warn("webhook: log", "err", err)
	}
}

// backoff is the wait before attempt n+1: FirstRetry, doubling, at most
// MaxBackoff, with a fifth of jitter either way so receivers coming back
// are not hit by every gateway at once.
func (p *Pusher) backoff(attempts int) time.Duration {
	d := float64(p.cfg.FirstRetry) * math.Pow(2, float64(attempts-1))
	d = min(d, float64(p.cfg.MaxBackoff))
	d *= 0.8 + 0.4*mrand.Float64()
	if attempts == 1 {
		d = min(d, float64(p.cfg.FirstRetry)) // the first retry comes within FirstRetry
	}
	return time.Duration(d)
}

// send POSTs one signed delivery.
func (p *Pusher) send(ctx context.Context, sub exchange.Subscription, id string, body []byte, now time.Time) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "corridor-webhooks")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", Sign(sub.SigningSecrets(now), p.svc.Signer, id, ts, body))
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // a small answer is read; the rest is not
	var retryAfter time.Duration
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		// Seconds or an HTTP date; honoured up to MaxBackoff, so a receiver
		// cannot stall its shipments for days.
		v := strings.TrimSpace(resp.Header.Get("Retry-After"))
		if s, err := strconv.Atoi(v); err == nil && s > 0 {
			retryAfter = time.Duration(min(s, 1<<20)) * time.Second
		} else if at, err := http.ParseTime(v); err == nil {
			retryAfter = time.Until(at)
		}
		retryAfter = min(max(retryAfter, 0), p.cfg.MaxBackoff)
	}
	return resp.StatusCode, retryAfter, nil
}

// Sign returns a webhook-signature header: "v1,<base64 HMAC-SHA256>" for
// each secret, and "v1a,<base64 Ed25519>" with the gateway's key, of
// id + "." + timestamp + "." + body.
func Sign(secrets []string, signer *exchange.Signer, id, ts string, body []byte) string {
	content := signedContent(id, ts, body)
	var sigs []string
	for _, s := range secrets {
		key, err := secretKey(s)
		if err != nil {
			continue
		}
		mac := hmac.New(sha256.New, key)
		mac.Write(content)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	if signer != nil {
		sigs = append(sigs, "v1a,"+base64.StdEncoding.EncodeToString(signer.SignBytes(content)))
	}
	return strings.Join(sigs, " ")
}

func signedContent(id, ts string, body []byte) []byte {
	return append([]byte(id+"."+ts+"."), body...)
}

func secretKey(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
}

// Tolerance is how far a delivery's timestamp may be from the receiver's clock.
const Tolerance = 5 * time.Minute

// Verify checks a delivery as a receiver does: the timestamp within
// Tolerance, and a v1 signature under secret (when given) and a v1a
// signature under pub (when given). At least one must be given.
func Verify(secret string, pub ed25519.PublicKey, h http.Header, body []byte, now time.Time) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), strings.Fields(h.Get("webhook-signature"))
	sec, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil {
		return errors.New("no webhook-id or webhook-timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Tolerance || d < -Tolerance {
		return fmt.Errorf("the timestamp is %s off", d.Round(time.Second))
	}
	if secret == "" && pub == nil {
		return errors.New("nothing to verify with: give the secret or the public key")
	}
	content := signedContent(id, ts, body)
	okHMAC, okEd := secret == "", pub == nil
	if secret != "" {
		key, err := secretKey(secret)
		if err != nil {
			return errors.New("the secret is not whsec_ and base64")
		}
		mac := hmac.New(sha256.New, key)
		mac.Write(content)
		want := mac.Sum(nil)
		for _, s := range sigs {
			if v, ok := strings.CutPrefix(s, "v1,"); ok {
				if got, err := base64.StdEncoding.DecodeString(v); err == nil && hmac.Equal(got, want) {
					okHMAC = true
				}
			}
		}
	}
	if pub != nil {
		for _, s := range sigs {
			if v, ok := strings.CutPrefix(s, "v1a,"); ok {
				if got, err := base64.StdEncoding.DecodeString(v); err == nil && ed25519.Verify(pub, content, got) {
					okEd = true
				}
			}
		}
	}
	switch {
	case !okHMAC:
		return errors.New("no v1 signature verifies with the secret")
	case !okEd:
		return errors.New("no v1a signature verifies with the public key")
	}
	return nil
}

// Replay pushes again, once each, the messages a subscription took since
// a time (from its delivery log, the newest 1000 attempts; at most 100),
// whether or not they are still in the inbox; receivers dedupe by
// webhook-id. It returns how many it will send, and sends them in the
// background, one at a time; one replay per subscription runs at once.
func (p *Pusher) Replay(ctx context.Context, sub exchange.Subscription, since time.Time) (int, error) {
	if sub.Disabled {
		return 0, exchange.Errorf(exchange.CodeConflict, "subscription %s is disabled (%s)", sub.ID, sub.DisabledReason)
	}
	as, err := p.q.Attempts(ctx, sub.ID, 1000)
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	var ids []string
	for i := len(as) - 1; i >= 0 && len(ids) < 100; i-- { // oldest first
		a := as[i]
		if a.At.Before(since) || a.Status < 200 || a.Status >= 300 || a.Replay || seen[a.MessageID] {
			continue
		}
		seen[a.MessageID] = true
		ids = append(ids, a.MessageID)
	}
	if _, running := p.replays.LoadOrStore(sub.ID, true); running {
		return 0, exchange.Errorf(exchange.CodeConflict, "a replay of subscription %s is running", sub.ID)
	}
	go func() {
		defer p.replays.Delete(sub.ID)
		rctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(ids)+1)*p.cfg.Timeout)
		defer cancel()
		for _, id := range ids {
			rec, err := p.svc.Archive.Record(rctx, id)
			if err != nil {
				p.log.Warn("webhook: replay", "subscription", sub.ID, "id", id, "err", err)
				return
			}
			im, err := p.svc.InboxMessageOf(rctx, exchange.MessageOf(rec))
			if err != nil {
				p.log.Warn("webhook: replay", "subscription", sub.ID, "id", id, "err", err)
				return
			}
			body, _ := json.Marshal(im)
			now := time.Now()
			status, _, err := p.send(rctx, sub, id, body, now)
			r := exchange.Attempt{MessageID: id, At: now.UTC(), Status: status, DurationMS: time.Since(now).Milliseconds(), Replay: true}
			if err != nil {
				r.Error = err.Error()
			}
			_ = p.q.LogAttempt(rctx, sub.ID, r)
		}
	}()
	return len(ids), nil
}
