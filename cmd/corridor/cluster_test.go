package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
)

// These tests take backends down while documents are submitted. They
// start servers of their own (a Sentinel setup, a 4-node MinIO) and run
// behind `make test-cluster`, which sets CORRIDOR_TEST_CLUSTER.
func needCluster(t *testing.T) {
	t.Helper()
	if os.Getenv("CORRIDOR_TEST_CLUSTER") == "" {
		t.Skip("CORRIDOR_TEST_CLUSTER not set; `make test-cluster` runs the failover tests")
	}
}

// submitter submits tracking events from 4 clients at once until halted,
// and keeps the body of each the gateway acknowledged (201 and a receipt).
type submitter struct {
	base, tag string
	client    *http.Client

	mu       sync.Mutex
	acked    map[string][]byte // document id -> body
	order    []string
	statuses map[string]int // what the other attempts got
	cond     *sync.Cond

	stop chan struct{}
	done chan struct{}
}

func startSubmitter(t *testing.T, base, tag string) *submitter {
	s := &submitter{base: base, tag: tag, client: &http.Client{Timeout: 15 * time.Second},
		acked: map[string][]byte{}, statuses: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() { s.run(w) })
	}
	go func() { wg.Wait(); close(s.done) }()
	t.Cleanup(s.halt)
	return s
}

func (s *submitter) run(worker int) {
	for n := 0; ; n++ {
		select {
		case <-s.stop:
			return
		default:
		}
		body := fmt.Appendf(nil, `{"eventID":"%s-%06d","eventType":"EQUIPMENT","eventClassifierCode":"ACT","eventCode":"GTIN",
"eventDateTime":"2026-11-05T16:10:00+08:00","eventLocation":{"UNLocationCode":"CNCKG"},"publisher":"cq-rail",
"billReference":"CQNL2026000187","containerNumber":"CSQU3054383"}`, s.tag, worker*1000000+n)
		id, outcome := s.submit(body)
		s.mu.Lock()
		if id != "" {
			s.acked[id] = body
			s.order = append(s.order, id)
		} else {
			s.statuses[outcome]++
		}
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

// submit returns the document id of an acknowledged submission, or what
// happened instead.
func (s *submitter) submit(body []byte) (id, outcome string) {
	req, _ := http.NewRequest("POST", s.base+"/v1/documents/tracking-event", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key("cq-rail"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", "transport error"
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Sprint(resp.StatusCode)
	}
	var rcpt exchange.Receipt
	if json.Unmarshal(data, &rcpt) != nil || rcpt.ID == "" || !slices.Contains(rcpt.Recipients, "sg-motors") {
		return "", "201 without a receipt naming sg-motors"
	}
	return rcpt.ID, ""
}

// waitAcked waits until n submissions in all were acknowledged.
func (s *submitter) waitAcked(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	timer := time.AfterFunc(time.Until(deadline), func() { s.mu.Lock(); s.cond.Broadcast(); s.mu.Unlock() })
	defer timer.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.order) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d submissions acknowledged within 2 minutes; the others got %v", len(s.order), n, s.statuses)
		}
		s.cond.Wait()
	}
}

func (s *submitter) ackedIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.order)
}

func (s *submitter) halt() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// unreadable reads back every document in ids (the submitter may still
// be running) and returns those that do not come back with their exact
// bytes.
func (s *submitter) unreadable(t *testing.T, ids []string) []string {
	t.Helper()
	s.mu.Lock()
	bodies := make([][]byte, len(ids))
	for i, id := range ids {
		bodies[i] = s.acked[id]
	}
	s.mu.Unlock()
	var bad []string
	for i, id := range ids {
		r := call(t, "GET", s.base+"/v1/documents/"+id, key("sg-motors"), nil)
		if r.status != http.StatusOK || !bytes.Equal(r.body, bodies[i]) {
			bad = append(bad, id)
		}
	}
	return bad
}

// verifyNothingLost halts the submitter and checks that every acknowledged
// document is in the archive (its exact bytes), in the index and in its
// recipient's inbox; it prints the counts and fails if any is lost.
func verifyNothingLost(t *testing.T, name string, g *Gateway, s *submitter) {
	t.Helper()
	s.halt()
	ids := s.ackedIDs()
	lostArchive := s.unreadable(t, ids)
	var lostIndex []string
	for _, id := range ids {
		if _, err := g.backends.index.Doc(context.Background(), id); err != nil {
			lostIndex = append(lostIndex, id)
		}
	}
	inbox := map[string]bool{}
	for {
		in := decode[inboxResp](t, call(t, "GET", s.base+"/v1/inbox?limit=100", key("sg-motors"), nil))
		if len(in.Messages) == 0 {
			break
		}
		for _, m := range in.Messages {
			inbox[m.DocumentID] = true
		}
		if r := call(t, "POST", s.base+"/v1/inbox/ack", key("sg-motors"), mustJSON(map[string]any{"ids": msgIDs(in)})); r.status != 200 {
			t.Fatalf("ack = %d %s", r.status, r.body)
		}
	}
	var lostInbox []string
	for _, id := range ids {
		if !inbox[id] {
			lostInbox = append(lostInbox, id)
		}
	}
	lost := map[string]bool{}
	for _, id := range slices.Concat(lostArchive, lostIndex, lostInbox) {
		lost[id] = true
	}
	t.Logf("%s: %d documents acknowledged, %d lost (archive %d, index %d, inbox %d); not acknowledged: %v",
		name, len(ids), len(lost), len(lostArchive), len(lostIndex), len(lostInbox), s.statuses)
	if len(lost) > 0 {
		t.Fatalf("%s: acknowledged documents lost: archive %v, index %v, inbox %v", name, lostArchive, lostIndex, lostInbox)
	}
}

// Sentinel promotes a replica while documents are submitted, after the
// master is killed with SIGKILL: with --redis-wait-replicas 1 every
// acknowledged document is still in the archive, the index and the inbox.
func TestSentinelFailoverLosesNothing(t *testing.T) {
	needCluster(t)
	sen := testenv.StartSentinel(t)
	s3 := testenv.MinIO(t)
	g, base, _ := gateway(t, storageFlags{Data: t.TempDir(), RedisSentinels: sen.Sentinels, RedisMaster: sen.MasterName,
		RedisWaitReplicas: 1, RedisPrefix: testenv.Prefix(),
		S3Endpoint: s3.Endpoint, S3Bucket: "failover-" + testenv.Prefix(), S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey})
	s := startSubmitter(t, base, "failover")
	s.waitAcked(t, 50)

	old := sen.Master(t)
	sen.Kill(t, old)
	killedAt := len(s.ackedIDs())
	testenv.Eventually(t, time.Minute, "a Sentinel promotes a replica", func() bool { return sen.Master(t) != old })
	t.Logf("master %s killed after %d acknowledged; %s promoted", old, killedAt, sen.Master(t))
	s.waitAcked(t, len(s.ackedIDs())+50) // and writes go on through the new master
	verifyNothingLost(t, "Sentinel failover", g, s)
}

// One node of a 4-node MinIO is killed while documents are submitted and
// brought back: reads keep working while it is down, and every
// acknowledged document is still there afterwards.
func TestDistributedMinIONodeLossLosesNothing(t *testing.T) {
	needCluster(t)
	mc := testenv.StartMinIOCluster(t)
	g, base, _ := gateway(t, storageFlags{Data: t.TempDir(), RedisURL: testenv.RedisURL(t), RedisPrefix: testenv.Prefix(),
		S3Endpoint: mc.Endpoint, S3Bucket: "dist-" + testenv.Prefix(), S3AccessKey: mc.AccessKey, S3SecretKey: mc.SecretKey})
	s := startSubmitter(t, base, "minio")
	s.waitAcked(t, 50)

	mc.Kill(t, 3)
	before := s.ackedIDs()
	s.waitAcked(t, len(before)+50) // writes go on with one node of four down
	if bad := s.unreadable(t, before); len(bad) > 0 {
		t.Fatalf("with a node down, %d of %d documents acknowledged before do not read back: %v", len(bad), len(before), bad)
	}
	t.Logf("node 3 down: %d documents written before it went read back", len(before))

	mc.Start(t, 3)
	s.waitAcked(t, len(s.ackedIDs())+50)
	verifyNothingLost(t, "MinIO node loss", g, s)
}
