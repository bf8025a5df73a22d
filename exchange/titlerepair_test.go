package exchange_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/storage/local"
)

// hookArchive is the embedded archive with its Put and Body replaceable.
type hookArchive struct {
	*local.Store
	put  func(context.Context, exchange.Record, []byte) error
	body func(context.Context, string) ([]byte, error)
}

func (h *hookArchive) Put(ctx context.Context, r exchange.Record, b []byte) error {
	if h.put != nil {
		return h.put(ctx, r, b)
	}
	return h.Store.Put(ctx, r, b)
}

func (h *hookArchive) Body(ctx context.Context, id string) ([]byte, error) {
	if h.body != nil {
		return h.body(ctx, id)
	}
	return h.Store.Body(ctx, id)
}

// An AMEND cut short on the embedded archive leaves its body without its
// record; a title action repairs the chain from that body while the
// amendment, retried, takes the place over in full: the index holds the
// entry the archive holds, not the one the repair read. (Found by a
// review: the repair indexed the body it had read, never archived.)
func TestTitleRepairBesideARetryTakingThePlace(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	v1 := w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	w.surrenderForAmendment(t)
	h := &hookArchive{Store: w.store}
	w.svc.Archive = h
	cut := ""
	h.put = func(ctx context.Context, rec exchange.Record, body []byte) error {
		if rec.Type != exchange.TypeTitle || cut != "" {
			return w.store.Put(ctx, rec, body)
		}
		cut = rec.ID
		if err := w.store.Put(ctx, rec, body); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(w.store.Dir, "archive", rec.ID[:2], rec.ID+".record.json")); err != nil {
			return err
		}
		return errors.New("write record: input/output error")
	}
	amendment := exchange.Submission{Type: "one-bill", Body: billArriving(t, "17"), Amends: v1.ID}
	if _, _, err := w.svc.Submit(ctx, w.party(t, "cq-mto"), amendment); err == nil || cut == "" {
		t.Fatalf("the amendment, its AMEND cut short: %v", err)
	}
	h.put = nil
	calls, retried := 0, false
	var retryErr error
	h.body = func(ctx context.Context, id string) ([]byte, error) {
		b, err := w.store.Body(ctx, id)
		if id == cut {
			if calls++; calls == 2 && !retried { // the repair's read
				retried = true
				_, _, retryErr = w.svc.Submit(ctx, w.party(t, "cq-mto"), amendment)
			}
		}
		return b, err
	}
	_, _ = w.svc.RequestTitle(ctx, w.party(t, "cq-mto"), bill, exchange.TitleRequest{Action: "TRANSFER", To: "sg-motors"})
	h.body = nil
	if !retried || retryErr != nil {
		t.Fatalf("the retry of the amendment: ran %v, %v", retried, retryErr)
	}
	indexed, err := w.svc.Index.Doc(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	archived, err := w.store.Record(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	if indexed.SHA256 != archived.SHA256 {
		t.Errorf("the index holds entry %s, the archive %s", indexed.SHA256, archived.SHA256)
	}
}
