package webhook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/landsea/corridor/adapters/webhook"
	"github.com/landsea/corridor/exchange"
)

// review2: push findings. Each test fails on the code as reviewed.

// A party whose inbox holds 1000 messages its subscription does not want
// (they wait for pull; or push gave up on them) never has a new matching
// message pushed: drain peeks only at the oldest 1000.
func TestReview2NewMessageBehindThousandUnwantedIsPushed(t *testing.T) {
	e := newEnv(t, nil, webhook.Config{AllowPrivate: true})
	rcv := newReceiver(t)
	ctx := context.Background()
	consignee := e.party(t, "sg-motors")
	base := time.Now().Add(-time.Hour)
	for i := range 1000 {
		m := exchange.Message{DocumentID: fmt.Sprintf("unwanted%018d", i), Type: "sea-bill", Sender: "beibu-line",
			SHA256: "00", ReceivedAt: base.Add(time.Duration(i) * time.Millisecond), Ref: "CQNL2026000187"}
		if err := e.store.Enqueue(ctx, m, "sg-motors"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.svc.Subscribe(ctx, consignee, exchange.SubscriptionRequest{URL: rcv.srv.URL, Types: []string{"tracking-event"}}); err != nil {
		t.Fatal(err)
	}
	rc := e.submit(t, "cq-rail", "tracking-event", "documents/05-event-gate-in-chongqing.json")
	// Rounds drain in the background: poll until it arrives (or fail after 20 s).
	e.until(t, func() bool {
		for _, d := range rcv.deliveries() {
			if d.header.Get("webhook-id") == rc.ID {
				return true
			}
		}
		return false
	})
}

// One party's receiver that hangs holds up every other party's pushes:
// Round drains parties one after another, each up to 2 timeouts.
func TestReview2HangingReceiverDoesNotHoldUpOtherParties(t *testing.T) {
	const timeout = 1500 * time.Millisecond
	e := newEnv(t, nil, webhook.Config{AllowPrivate: true, Timeout: timeout})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var hung atomic.Int64
	done := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.Add(1)
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	defer hang.Close()
	defer close(done)
	good := newReceiver(t)
	if _, _, err := e.svc.Subscribe(ctx, e.party(t, "sg-bank"), exchange.SubscriptionRequest{URL: hang.URL}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.Subscribe(ctx, e.party(t, "sg-motors"), exchange.SubscriptionRequest{URL: good.srv.URL}); err != nil {
		t.Fatal(err)
	}
	go e.pusher.Run(ctx)
	for deadline := time.Now().Add(10 * time.Second); hung.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the hanging receiver was never called")
		}
	}
	start := time.Now()
	rc := e.submit(t, "cq-rail", "tracking-event", "documents/05-event-gate-in-chongqing.json")
	for time.Since(start) < 5*timeout {
		for _, d := range good.deliveries() {
			if d.header.Get("webhook-id") == rc.ID {
				if took := time.Since(start); took > timeout/2 {
					t.Fatalf("sg-motors' healthy receiver got the event after %s (push interval 10ms): sg-bank's hanging receiver held it up", took.Round(time.Millisecond))
				}
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("sg-motors' receiver did not get the event in %s", 5*timeout)
}
