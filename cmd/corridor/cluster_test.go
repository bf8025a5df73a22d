package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
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

// submitter submits tracking events of the demo shipment from 4 clients
// at once until halted. A client whose attempt is refused makes it again
// with the same body and Idempotency-Key, after a pause, until it is
// acknowledged: 201, or 200 with the receipt of an earlier attempt that
// got further than its answer.
type submitter struct {
	base, tag string
	client    *http.Client

	mu      sync.Mutex
	acked   map[string]submitted // by document id
	order   []string
	refused map[string]int // what the attempts not acknowledged got
	cond    *sync.Cond

	stop chan struct{}
	done chan struct{}
}

// submitted is what an acknowledged submission sent and who receives it.
type submitted struct {
	body       []byte
	recipients []string
}

func startSubmitter(t *testing.T, base, tag string) *submitter {
	s := &submitter{base: base, tag: tag, client: &http.Client{Timeout: 15 * time.Second},
		acked: map[string]submitted{}, refused: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
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
		body := fmt.Appendf(nil, `{"eventID":"%s-%06d","eventType":"EQUIPMENT","eventClassifierCode":"ACT","eventCode":"GTIN",
"eventDateTime":"2026-11-05T16:10:00+08:00","eventLocation":{"UNLocationCode":"CNCKG"},"publisher":"cq-rail",
"billReference":"CQNL2026000187","containerNumber":"CSQU3054383"}`, s.tag, worker*1000000+n)
		idem := fmt.Sprintf("%s-%d-%d", s.tag, worker, n)
		for !s.attempt(body, idem) {
			select {
			case <-s.stop:
				return
			case <-time.After(100 * time.Millisecond): // a client's pause before it tries again
			}
		}
		select {
		case <-s.stop:
			return
		default:
		}
	}
}

// attempt submits once and records what came of it.
func (s *submitter) attempt(body []byte, idem string) (acked bool) {
	rcpt, outcome := s.submit(body, idem)
	s.mu.Lock()
	defer s.mu.Unlock()
	if outcome == "" {
		s.acked[rcpt.ID] = submitted{body, rcpt.Recipients}
		s.order = append(s.order, rcpt.ID)
	} else {
		s.refused[outcome]++
	}
	s.cond.Broadcast()
	return outcome == ""
}

// submit returns the receipt of an acknowledged submission, or what
// happened instead.
func (s *submitter) submit(body []byte, idem string) (rcpt exchange.Receipt, outcome string) {
	req, _ := http.NewRequest("POST", s.base+"/v1/documents/tracking-event", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key("cq-rail"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idem)
	resp, err := s.client.Do(req)
	if err != nil {
		return rcpt, "transport error"
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return rcpt, fmt.Sprint(resp.StatusCode)
	}
	if json.Unmarshal(data, &rcpt) != nil || rcpt.ID == "" || !slices.Contains(rcpt.Recipients, "sg-motors") {
		return rcpt, fmt.Sprint(resp.StatusCode, " without a receipt naming sg-motors")
	}
	return rcpt, ""
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
			t.Fatalf("%d of %d submissions acknowledged within 2 minutes; the other attempts got %v", len(s.order), n, s.refused)
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
	subs := make([]submitted, len(ids))
	for i, id := range ids {
		subs[i] = s.acked[id]
	}
	s.mu.Unlock()
	var bad []string
	for i, id := range ids {
		r := call(t, "GET", s.base+"/v1/documents/"+id, key("sg-motors"), nil)
		if r.status != http.StatusOK || !bytes.Equal(r.body, subs[i].body) {
			bad = append(bad, id)
		}
	}
	return bad
}

// inbox drains a party's inbox (pull, then ack) and returns the
// documents it held.
func inbox(t *testing.T, base, party string) map[string]bool {
	t.Helper()
	docs := map[string]bool{}
	for {
		in := decode[inboxResp](t, call(t, "GET", base+"/v1/inbox?limit=100", key(party), nil))
		if len(in.Messages) == 0 {
			return docs
		}
		for _, m := range in.Messages {
			docs[m.DocumentID] = true
		}
		if r := call(t, "POST", base+"/v1/inbox/ack", key(party), mustJSON(map[string]any{"ids": msgIDs(in)})); r.status != 200 {
			t.Fatalf("ack %s = %d %s", party, r.status, r.body)
		}
	}
}

// shipmentEvents pages through the demo shipment's view (as sg-motors)
// and returns the documents of its events.
func shipmentEvents(t *testing.T, base string) map[string]bool {
	t.Helper()
	docs := map[string]bool{}
	for cursor := ""; ; {
		r := call(t, "GET", base+"/v1/shipments/CQNL2026000187?limit=100&cursor="+url.QueryEscape(cursor), key("sg-motors"), nil)
		if r.status != http.StatusOK {
			t.Fatalf("shipment view = %d %s", r.status, r.body)
		}
		sh := decode[exchange.Shipment](t, r)
		for _, e := range sh.Events {
			docs[e.DocumentID] = true
		}
		if cursor = sh.Next; cursor == "" {
			return docs
		}
	}
}

// verifyNothingLost halts the submitter and checks that every acknowledged
// document is in the archive (its exact bytes), in the index, in each of
// its recipients' inboxes and among the shipment's events; it prints the
// counts and fails if any is lost.
func verifyNothingLost(t *testing.T, name string, g *Gateway, s *submitter) {
	t.Helper()
	s.halt()
	ids := s.ackedIDs()
	lostArchive := s.unreadable(t, ids)
	var lostIndex, lostInbox, lostShipment []string
	inboxes := map[string]map[string]bool{} // party -> documents
	events := shipmentEvents(t, s.base)
	for _, id := range ids {
		if _, err := g.backends.index.Doc(context.Background(), id); err != nil {
			lostIndex = append(lostIndex, id)
		}
		for _, party := range s.acked[id].recipients {
			if inboxes[party] == nil {
				inboxes[party] = inbox(t, s.base, party)
			}
			if !inboxes[party][id] {
				lostInbox = append(lostInbox, id+" (for "+party+")")
			}
		}
		if !events[id] {
			lostShipment = append(lostShipment, id)
		}
	}
	lost := map[string]bool{}
	for _, id := range slices.Concat(lostArchive, lostIndex, lostInbox, lostShipment) {
		lost[strings.Fields(id)[0]] = true
	}
	t.Logf("%s: %d documents acknowledged, %d lost (archive %d, index %d, inboxes of %d parties %d, shipment %d); attempts refused and made again: %v",
		name, len(ids), len(lost), len(lostArchive), len(lostIndex), len(inboxes), len(lostInbox), len(lostShipment), s.refused)
	if len(lost) > 0 {
		t.Fatalf("%s: acknowledged documents lost: archive %v, index %v, inboxes %v, shipment %v",
			name, lostArchive, lostIndex, lostInbox, lostShipment)
	}
}

// failover runs what the failover tests share: a gateway on storage and 4
// clients submitting; once 50 documents are acknowledged, fail takes a
// backend down (and waits until it is back, where it comes back); then 50
// more must be acknowledged, and none acknowledged may be lost.
func failover(t *testing.T, name string, storage storageFlags, fail func(s *submitter)) {
	t.Helper()
	g, base, _ := gateway(t, storage)
	s := startSubmitter(t, base, testenv.Prefix())
	s.waitAcked(t, 50)
	fail(s)
	s.waitAcked(t, len(s.ackedIDs())+50)
	verifyNothingLost(t, name, g, s)
}

// Sentinel promotes a replica while documents are submitted, after the
// master is killed with SIGKILL: with --redis-wait-replicas 1 every
// acknowledged document is still in the archive, the index, the inboxes
// and the shipment's view.
func TestSentinelFailoverLosesNothing(t *testing.T) {
	needCluster(t)
	sen := testenv.StartSentinel(t)
	s3 := testenv.MinIO(t)
	failover(t, "Sentinel failover", storageFlags{Data: t.TempDir(), RedisSentinels: sen.Sentinels, RedisMaster: sen.MasterName,
		RedisWaitReplicas: 1, RedisPrefix: testenv.Prefix(),
		S3Endpoint: s3.Endpoint, S3Bucket: "failover-" + testenv.Prefix(), S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey},
		func(s *submitter) {
			old := sen.Master(t)
			sen.Kill(t, old)
			killed, killedAt := time.Now(), len(s.ackedIDs())
			testenv.Eventually(t, time.Minute, "a Sentinel promotes a replica", func() bool { return sen.Master(t) != old })
			t.Logf("master %s killed after %d acknowledged; %s promoted %s later",
				old, killedAt, sen.Master(t), time.Since(killed).Round(100*time.Millisecond))
		})
}

// A Redis Cluster promotes a replica while documents are submitted, after
// its master is killed with SIGKILL: the master of the hash slot of
// sg-motors' inbox keys ({sg-motors}), which every submission writes.
// With --redis-wait-replicas 1 every acknowledged document is still in the
// archive, the index, the inboxes and the shipment's view. The promoted
// replica has no replica of its own, so writes to its slots are refused
// (503) until the killed node is started again and follows it.
func TestRedisClusterFailoverLosesNothing(t *testing.T) {
	needCluster(t)
	rc := testenv.StartRedisCluster(t)
	s3 := testenv.MinIO(t)
	failover(t, "Redis Cluster failover", storageFlags{Data: t.TempDir(), RedisCluster: rc.Nodes, RedisWaitReplicas: 1,
		RedisPrefix: testenv.Prefix(),
		S3Endpoint:  s3.Endpoint, S3Bucket: "rcfailover-" + testenv.Prefix(), S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey},
		func(s *submitter) {
			const slot = "{sg-motors}" // the hash tag of sg-motors' inbox keys (storage/redis)
			old := rc.MasterOf(t, slot)
			rc.Kill(t, old)
			killed, killedAt := time.Now(), len(s.ackedIDs())
			testenv.Eventually(t, time.Minute, "the cluster promotes a replica", func() bool { return rc.MasterOf(t, slot) != old })
			promoted, promotedIn, promotedAt := rc.MasterOf(t, slot), time.Since(killed), len(s.ackedIDs())
			rc.Start(t, old)
			t.Logf("master %s of %s killed after %d acknowledged; %s promoted %s later, after %d; %s back as its replica %s after the kill, after %d",
				old, slot, killedAt, promoted, promotedIn.Round(100*time.Millisecond), promotedAt,
				old, time.Since(killed).Round(100*time.Millisecond), len(s.ackedIDs()))
		})
}

// One node of a 4-node MinIO is killed while documents are submitted and
// brought back: reads keep working while it is down, and every
// acknowledged document is still there afterwards.
func TestDistributedMinIONodeLossLosesNothing(t *testing.T) {
	needCluster(t)
	mc := testenv.StartMinIOCluster(t)
	failover(t, "MinIO node loss", storageFlags{Data: t.TempDir(), RedisURL: testenv.RedisURL(t), RedisPrefix: testenv.Prefix(),
		S3Endpoint: mc.Endpoint, S3Bucket: "dist-" + testenv.Prefix(), S3AccessKey: mc.AccessKey, S3SecretKey: mc.SecretKey},
		func(s *submitter) {
			mc.Kill(t, 3)
			before := s.ackedIDs()
			s.waitAcked(t, len(before)+50) // writes go on with one node of four down
			if bad := s.unreadable(t, before); len(bad) > 0 {
				t.Fatalf("with a node down, %d of %d documents acknowledged before do not read back: %v", len(bad), len(before), bad)
			}
			t.Logf("node 3 down: %d documents written before it went read back", len(before))
			mc.Start(t, 3)
		})
}
