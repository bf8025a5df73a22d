package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/landsea/corridor/adapters/webhook"
	"github.com/landsea/corridor/exchange"
)

// corridor listen's receiver: a delivery that verifies is printed and
// answered 204; one that does not, 400 (so the gateway retries it).
func TestListenChecksDeliveries(t *testing.T) {
	signer, _ := exchange.NewSigner(bytes.Repeat([]byte{6}, 32))
	secret := "whsec_" + "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="
	body := []byte(`{"id":"abcdefghijklmnopqrstuvwxyz","type":"tracking-event","sender":"cq-rail"}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	sig := webhook.Sign([]string{secret}, signer, "abcdefghijklmnopqrstuvwxyz", ts, body)
	var out bytes.Buffer
	h := listener(&out, secret, signer.PublicKey())
	for _, c := range []struct {
		name   string
		body   []byte
		sig    string
		status int
	}{
		{"signed", body, sig, 204},
		{"body changed", bytes.Replace(body, []byte("cq-rail"), []byte("cq-fake"), 1), sig, 400},
		{"HMAC only, the key's signature dropped", body, strings.Fields(sig)[0], 400},
		{"unsigned", body, "", 400},
	} {
		req := httptest.NewRequest("POST", "/", bytes.NewReader(c.body))
		req.Header.Set("webhook-id", "abcdefghijklmnopqrstuvwxyz")
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", c.sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.status {
			t.Errorf("%s: %d, want %d", c.name, rec.Code, c.status)
		}
	}
	if !strings.Contains(out.String(), "tracking-event") || !strings.Contains(out.String(), "verified") {
		t.Fatalf("printed %q", out.String())
	}
}

// Kill -9 of the gateway while it pushes: after a restart every message
// reaches the receiver at least once; the duplicates are counted.
func TestPushSurvivesKill(t *testing.T) {
	bin := buildBinary(t)
	data := t.TempDir()
	var mu sync.Mutex
	seen := map[string]int{}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("webhook-id")]++
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // a receiver that takes a moment, so the kill lands mid-delivery
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rcv.Close()
	flags := []string{"--webhook-allow-http", "--webhook-allow-private", "--webhook-first-retry", "100ms"}
	cmd, base := startBinary(t, bin, data, flags...)
	r := call(t, "POST", base+"/v1/subscriptions", key("sg-motors"), []byte(`{"url":"`+rcv.URL+`/hooks","types":["tracking-event"]}`))
	if r.status != 201 {
		t.Fatalf("subscribe: %d %s", r.status, r.body)
	}
	const n = 40
	var ids []string
	for i := range n {
		ev := bytes.Replace(readDemo(t, "documents/05-event-gate-in-chongqing.json"), []byte("cqrail-gtin-CSQU3054383-20261105"),
			[]byte(fmt.Sprintf("push-kill-%04d", i)), 1)
		rc, err := postEvent(base, ev)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rc.ID)
	}
	count := func() (got, total int) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if seen[id] > 0 {
				got++
			}
			total += seen[id]
		}
		return
	}
	waitFor(t, func() bool { got, _ := count(); return got >= 5 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	before, _ := count()
	startBinary(t, bin, data, flags...)
	deadline := time.Now().Add(60 * time.Second)
	for got, _ := count(); got < n; got, _ = count() {
		if time.Now().After(deadline) {
			t.Fatalf("after the restart %d of %d messages reached the receiver", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, total := count()
	t.Logf("kill -9 after %d of %d pushed: all %d arrived, %d duplicates", before, n, n, total-n)
}
