package main

import (
	"context"
	"reflect"
	"slices"
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
	svc := b.service(signer)
	if err := loadDemo(ctx, svc, "../../deploy/demo"); err != nil {
		t.Fatal(err)
	}
	consignee, _ := svc.Parties.Party(ctx, "sg-motors")
	before, err := svc.Shipment(ctx, consignee, "CQNL2026000187", exchange.EventQuery{})
	if err != nil {
		t.Fatal(err)
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
	n, err := svc.Reindex(ctx, true, func() { steps++ })
	if err != nil || n != 16 || steps != 16 {
		t.Fatalf("reindex = %d (%d steps), %v; want the 15 demo documents and the demo's grant", n, steps, err)
	}
	after, err := svc.Shipment(ctx, consignee, "CQNL2026000187", exchange.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	haulier, _ := svc.Parties.Party(ctx, "sg-haulage")
	if g, err := svc.GrantOf(ctx, haulier, "CQNL2026000187", "sg-haulage"); err != nil || !g.Active || !g.Publish {
		t.Fatalf("the demo's grant after reindex: %+v, %v", g, err)
	}
	if !reflect.DeepEqual(after, before) || len(before.Shipment.Documents) != 8 {
		t.Fatalf("rebuilt shipment differs:\nbefore %+v\nafter  %+v", before.Shipment, after.Shipment)
	}
	if got := inbox(); !slices.Equal(got, wantInbox) || len(got) == 0 {
		t.Fatalf("rebuilt inbox = %v, want %v in the same order", got, wantInbox)
	}
}
