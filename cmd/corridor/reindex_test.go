package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/redis"
)

// The archive is the ledger: when Redis loses everything, reindex
// --requeue rebuilds the shipments and the inboxes from S3.
func TestReindexAfterRedisLostItsData(t *testing.T) {
	s3 := testenv.MinIO(t)
	f := storageFlags{Data: t.TempDir(), RedisURL: testenv.RedisURL(t), RedisPrefix: testenv.Prefix(),
		S3Endpoint: s3.Endpoint, S3Bucket: "reindex-" + testenv.Prefix(), S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey,
		VisibilityTimeout: time.Minute}
	ctx := context.Background()
	b, err := f.open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	signer, _ := exchange.NewSigner(make([]byte, 32))
	svc := b.service(signer, nil)
	if err := loadDemo(ctx, svc, "../../deploy/demo"); err != nil {
		t.Fatal(err)
	}
	consignee, _ := svc.Parties.Party(ctx, "sg-motors")
	before, err := svc.Shipment(ctx, consignee, "CQNL2026000187", exchange.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	titleBefore, err := svc.Title(ctx, consignee, "CQNL2026000187")
	if err != nil || len(titleBefore.Chain) != 7 {
		t.Fatalf("the demo's title: %+v, %v", titleBefore, err)
	}
	// A second bill whose title has an action pending.
	second, _ := os.ReadFile("../../deploy/demo/documents/01-one-bill.json")
	second = bytes.Replace(second, []byte("CQNL2026000187"), []byte("CQNL2026000188"), 1)
	mto, _ := svc.Parties.Party(ctx, "cq-mto")
	shipper, _ := svc.Parties.Party(ctx, "cq-autoparts")
	if _, _, err := svc.Submit(ctx, mto, exchange.Submission{Type: "one-bill", Body: second}); err != nil {
		t.Fatal(err)
	}
	pendingBefore, err := svc.RequestTitle(ctx, shipper, "CQNL2026000188", exchange.TitleRequest{Action: "PLEDGE", To: "sg-bank"})
	if err != nil || pendingBefore.Pending == nil {
		t.Fatalf("pledge of the second bill: %+v, %v", pendingBefore, err)
	}
	// The inbox in the order it delivers: oldest first.
	inbox := func() []string {
		msgs, err := b.queue.Pull(ctx, "sg-motors", 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range msgs {
			ids = append(ids, m.DocumentID)
		}
		return ids
	}
	wantInbox := inbox()

	if err := b.queue.(*redis.Store).FlushForTest(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Shipment(ctx, consignee, "CQNL2026000187", exchange.EventQuery{}); exchange.ErrorCode(err) != exchange.CodeNotFound {
		t.Fatalf("shipment after the flush = %v; want it gone", err)
	}
	steps := 0
	n, err := svc.Reindex(ctx, true, time.Time{}, func() { steps++ })
	if err != nil || n != 29 || steps != 29 {
		t.Fatalf("reindex = %d (%d steps), %v; want the 18 demo documents (an amendment among them), 6 title entries, 2 clearances, the demo's grant, a second bill and its pledge", n, steps, err)
	}
	after, err := svc.Shipment(ctx, consignee, "CQNL2026000187", exchange.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	titleAfter, err := svc.Title(ctx, consignee, "CQNL2026000187")
	titleAfter.Head.Time, titleAfter.Head.Signature = titleBefore.Head.Time, titleBefore.Head.Signature // signed when read
	if err != nil || !reflect.DeepEqual(titleAfter, titleBefore) {
		t.Fatalf("title after reindex: %+v, %v\nbefore: %+v", titleAfter, err, titleBefore)
	}
	pendingAfter, err := svc.Title(ctx, shipper, "CQNL2026000188")
	pendingAfter.Head.Time, pendingAfter.Head.Signature = pendingBefore.Head.Time, pendingBefore.Head.Signature
	if err != nil || !reflect.DeepEqual(pendingAfter, pendingBefore) {
		t.Fatalf("pending title after reindex: %+v, %v\nbefore: %+v", pendingAfter, err, pendingBefore)
	}
	haulier, _ := svc.Parties.Party(ctx, "sg-haulage")
	if g, err := svc.GrantOf(ctx, haulier, "CQNL2026000187", "sg-haulage"); err != nil || !g.Active || !g.Publish {
		t.Fatalf("the demo's grant after reindex: %+v, %v", g, err)
	}
	if !reflect.DeepEqual(after, before) || len(before.Shipment.Documents) != 10 {
		b, _ := json.MarshalIndent(before.Shipment, "", " ")
		a, _ := json.MarshalIndent(after.Shipment, "", " ")
		t.Fatalf("rebuilt shipment differs:\n%s", lineDiff(string(b), string(a)))
	}
	if got := inbox(); !slices.Equal(got, wantInbox) || len(got) == 0 {
		t.Fatalf("rebuilt inbox = %v, want %v in the same order", got, wantInbox)
	}
}

// lineDiff lists the lines of b and a that differ, side by side.
func lineDiff(b, a string) string {
	bl, al := strings.Split(b, "\n"), strings.Split(a, "\n")
	var out []string
	for i := 0; i < max(len(bl), len(al)); i++ {
		var x, y string
		if i < len(bl) {
			x = bl[i]
		}
		if i < len(al) {
			y = al[i]
		}
		if x != y {
			out = append(out, fmt.Sprintf("line %d: before %s | after %s", i+1, x, y))
		}
	}
	return strings.Join(out, "\n")
}
