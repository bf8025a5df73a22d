package exchange_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/storage/storagetest"
)

const bill = "CQNL2026000187"

func (w *world) act(t *testing.T, party, action, to string) (exchange.Title, error) {
	t.Helper()
	return w.svc.RequestTitle(context.Background(), w.party(t, party), bill, exchange.TitleRequest{Action: action, To: to})
}

func (w *world) answer(t *testing.T, party string, accept bool) (exchange.Title, error) {
	t.Helper()
	return w.svc.AnswerTitle(context.Background(), w.party(t, party), bill, accept, "")
}

func must(ti exchange.Title, err error) func(*testing.T) exchange.Title {
	return func(t *testing.T) exchange.Title {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return ti
	}
}

// The demo's journey: the shipper pledges the bill to the bank, the bank
// sells it on to the consignee, who surrenders it for delivery. Each step
// by the holder alone, one at a time, answered by its recipient; the chain
// verifies offline; after the surrender nothing more happens.
func TestTitleJourney(t *testing.T) {
	w := newWorld(t)
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	w.mustSubmit(t, "cq-autoparts", "customs-declaration", demoDoc(t, "03-export-declaration.json"))
	ctx := context.Background()

	ti := must(w.svc.Title(ctx, w.party(t, "sg-motors"), bill))(t)
	if ti.Status != exchange.TitleIssued || ti.Holder != "cq-autoparts" || len(ti.Chain) != 1 || ti.Chain[0].Action != exchange.ActionIssue {
		t.Fatalf("at issue: %+v", ti)
	}
	type step struct {
		party, action, to string
		answer            string // "accept" or "reject" instead of an action
		want              exchange.Code
	}
	steps := []step{
		{party: "sg-motors", action: "TRANSFER", to: "sg-motors", want: exchange.CodeForbidden},           // not the holder
		{party: "cq-mto", action: "SURRENDER_FOR_AMENDMENT", want: exchange.CodeForbidden},                // the issuer is not the holder
		{party: "cq-autoparts", action: "PLEDGE", to: "cq-rail", want: exchange.CodeInvalid},              // not a bank
		{party: "cq-autoparts", action: "TRANSFER", to: "cq-rail", want: exchange.CodeInvalid},            // straight bill: consignee or bank
		{party: "cq-autoparts", action: "RELEASE", want: exchange.CodeConflict},                           // not pledged
		{party: "cq-autoparts", action: "SURRENDER_FOR_DELIVERY", want: exchange.CodeConflict},            // only the consignee
		{party: "cq-autoparts", action: "BURN", want: exchange.CodeInvalid},                               // no such action
		{party: "sg-bank", answer: "accept", want: exchange.CodeConflict},                                 // nothing pending
		{party: "cq-autoparts", action: "PLEDGE", to: "sg-bank"},                                          //
		{party: "cq-autoparts", action: "TRANSFER", to: "sg-motors", want: exchange.CodeConflict},         // one at a time
		{party: "sg-motors", answer: "accept", want: exchange.CodeForbidden},                              // not asked
		{party: "sg-bank", answer: "reject"},                                                              // stays with the shipper
		{party: "cq-autoparts", action: "PLEDGE", to: "sg-bank"},                                          //
		{party: "sg-bank", answer: "accept"},                                                              // pledged
		{party: "cq-autoparts", action: "TRANSFER", to: "sg-motors", want: exchange.CodeForbidden},        // the bank holds it
		{party: "sg-bank", action: "TRANSFER", to: "sg-motors"},                                           // on payment
		{party: "sg-motors", answer: "accept"},                                                            //
		{party: "sg-motors", action: "SURRENDER_FOR_DELIVERY", to: "sg-bank", want: exchange.CodeInvalid}, // to the issuer only
		{party: "sg-motors", action: "SURRENDER_FOR_DELIVERY"},                                            //
		{party: "cq-mto", answer: "accept"},                                                               // surrendered
		{party: "cq-mto", action: "TRANSFER", to: "sg-bank", want: exchange.CodeConflict},                 // the title has ended
		{party: "sg-motors", action: "SURRENDER_FOR_AMENDMENT", want: exchange.CodeConflict},              //
	}
	for i, s := range steps {
		var err error
		if s.answer != "" {
			ti, err = w.answer(t, s.party, s.answer == "accept")
		} else {
			ti, err = w.act(t, s.party, s.action, s.to)
		}
		if exchange.ErrorCode(err) != s.want || (s.want == "" && err != nil) {
			t.Fatalf("step %d (%s %s%s to %s): %v; want %q", i, s.party, s.action, s.answer, s.to, err, s.want)
		}
	}
	ti = must(w.svc.Title(ctx, w.party(t, "corridor-ops"), bill))(t)
	var actions []string
	for _, e := range ti.Chain {
		actions = append(actions, e.Actor+":"+e.Action)
	}
	want := []string{"cq-mto:ISSUE", "cq-autoparts:PLEDGE", "sg-bank:REJECT", "cq-autoparts:PLEDGE", "sg-bank:ACCEPT",
		"sg-bank:TRANSFER", "sg-motors:ACCEPT", "sg-motors:SURRENDER_FOR_DELIVERY", "cq-mto:ACCEPT"}
	if !slices.Equal(actions, want) || ti.Status != exchange.TitleSurrendered || ti.Holder != "cq-mto" || ti.Pending != nil {
		t.Fatalf("chain %v, %s held by %s", actions, ti.Status, ti.Holder)
	}
	if err := exchange.VerifyTitle(w.svc.Signer.PublicKey(), ti); err != nil {
		t.Fatalf("the chain does not verify: %v", err)
	}
	v, err := w.svc.Shipment(ctx, w.party(t, "sg-motors"), bill, exchange.EventQuery{})
	if err != nil || v.Shipment.TitleStatus != exchange.TitleSurrendered || v.Shipment.Holder != "cq-mto" {
		t.Fatalf("view: %+v %v", v.Shipment, err)
	}
	// Every member got every change: customs, a member through its
	// declaration, has the 8 entries after the issue in its inbox.
	msgs, _ := w.svc.Pull(ctx, w.party(t, "cq-customs"), 100, 0)
	n := 0
	for _, m := range msgs {
		if m.Type == exchange.TypeTitle {
			n++
		}
	}
	if n != 8 {
		t.Fatalf("cq-customs got %d title changes, want 8", n)
	}
}

// A saved chain fails verification when any entry is changed, dropped,
// reordered or signed by another key, naming the entry.
func TestVerifyTitleFindsTampering(t *testing.T) {
	w := newWorld(t)
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	must(w.act(t, "cq-autoparts", "PLEDGE", "sg-bank"))(t)
	must(w.answer(t, "sg-bank", true))(t)
	must(w.act(t, "sg-bank", "TRANSFER", "sg-motors"))(t)
	ti := must(w.answer(t, "sg-motors", true))(t)
	pub := w.svc.Signer.PublicKey()
	if err := exchange.VerifyTitle(pub, ti); err != nil {
		t.Fatal(err)
	}
	other, _ := exchange.NewSigner(bytes.Repeat([]byte{4}, 32))
	clone := func() exchange.Title {
		c := ti
		c.Chain = slices.Clone(ti.Chain)
		return c
	}
	cases := []struct {
		name string
		edit func(*exchange.Title)
		seq  int
	}{
		{"changed recipient", func(c *exchange.Title) { c.Chain[3].Recipient = "cq-rail" }, 3},
		{"changed time", func(c *exchange.Title) { c.Chain[1].Time = "2026-01-01T00:00:00Z" }, 1},
		{"dropped entry", func(c *exchange.Title) { c.Chain = slices.Delete(c.Chain, 2, 3) }, 2},
		{"reordered", func(c *exchange.Title) { c.Chain[1], c.Chain[2] = c.Chain[2], c.Chain[1] }, 1},
		{"holder claimed", func(c *exchange.Title) { c.Holder = "sg-bank" }, -1},
		{"re-signed by another key", func(c *exchange.Title) { *c = resign(t, other, *c, 2) }, 2},
		{"empty", func(c *exchange.Title) { c.Chain = nil }, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tt := clone()
			c.edit(&tt)
			err := exchange.VerifyTitle(pub, tt)
			var te *exchange.TitleError
			if !errors.As(err, &te) || te.Seq != c.seq {
				t.Fatalf("VerifyTitle = %v; want a failure at entry %d", err, c.seq)
			}
		})
	}
}

// resign changes an entry and signs it with another key, and relinks the
// rest: only the signature check can tell.
func resign(t *testing.T, s *exchange.Signer, ti exchange.Title, at int) exchange.Title {
	t.Helper()
	ti.Chain[at].Reason = "forged"
	for i := at; i < len(ti.Chain); i++ {
		if i > 0 {
			ti.Chain[i].PreviousHash = ti.Chain[i-1].Hash
		}
		ti.Chain[i] = exchange.SealTitleForTest(s, ti.Chain[i])
	}
	return ti
}

// Eight concurrent actions by the holder: exactly one is taken, on every
// backend, and the chain stays one chain.
func TestTitleOneHolderUnderConcurrency(t *testing.T) {
	backends := map[string]func(t *testing.T) *exchange.Service{
		"Embedded": func(t *testing.T) *exchange.Service { return newWorld(t).svc },
		"RedisMinIO": func(t *testing.T) *exchange.Service {
			_, _, svc := onRedisMinIO(t)
			return svc
		},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			svc := open(t)
			ctx := context.Background()
			for _, p := range demoParties(t) {
				if _, err := svc.CreateParty(ctx, p); err != nil && exchange.ErrorCode(err) != exchange.CodeConflict {
					t.Fatal(err)
				}
			}
			mto, _ := svc.Parties.Party(ctx, "cq-mto")
			if _, _, err := svc.Submit(ctx, mto, exchange.Submission{Type: "one-bill", Body: demoDoc(t, "01-one-bill.json")}); err != nil {
				t.Fatal(err)
			}
			holder, _ := svc.Parties.Party(ctx, "cq-autoparts")
			const n = 8
			codes := make([]exchange.Code, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					to := []string{"sg-bank", "sg-motors"}[i%2]
					action := []string{"PLEDGE", "TRANSFER"}[i%2]
					_, err := svc.RequestTitle(ctx, holder, bill, exchange.TitleRequest{Action: action, To: to})
					codes[i] = exchange.ErrorCode(err)
				})
			}
			wg.Wait()
			count := map[exchange.Code]int{}
			for _, c := range codes {
				count[c]++
			}
			if count[""] != 1 || count[exchange.CodeConflict] != n-1 {
				t.Fatalf("outcomes %v; want one success and %d conflicts", count, n-1)
			}
			ti, err := svc.Title(ctx, holder, bill)
			if err != nil || len(ti.Chain) != 2 || ti.Pending == nil || exchange.VerifyTitle(svc.Signer.PublicKey(), ti) != nil {
				t.Fatalf("after the race: %+v %v", ti, err)
			}
		})
	}
}

// The sender of a pending action takes it back; nobody else can.
func TestTitleWithdraw(t *testing.T) {
	w := newWorld(t)
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	ctx := context.Background()
	withdraw := func(p string) error {
		_, err := w.svc.WithdrawTitle(ctx, w.party(t, p), bill, "")
		return err
	}
	if err := withdraw("cq-autoparts"); exchange.ErrorCode(err) != exchange.CodeConflict {
		t.Fatalf("withdraw with nothing pending: %v", err)
	}
	if _, err := w.act(t, "cq-autoparts", "TRANSFER", "sg-bank"); exchange.ErrorCode(err) != exchange.CodeInvalid {
		t.Fatalf("a straight bill transferred to a bank: %v, want invalid (pledge it instead)", err)
	}
	must(w.act(t, "cq-autoparts", "PLEDGE", "sg-bank"))(t)
	if err := withdraw("sg-bank"); exchange.ErrorCode(err) != exchange.CodeForbidden {
		t.Fatalf("withdraw by the recipient: %v", err)
	}
	if err := withdraw("cq-autoparts"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.answer(t, "sg-bank", true); exchange.ErrorCode(err) != exchange.CodeConflict {
		t.Fatalf("accepting a withdrawn pledge: %v", err)
	}
	ti := must(w.act(t, "cq-autoparts", "PLEDGE", "sg-bank"))(t)
	if err := exchange.VerifyTitle(w.svc.Signer.PublicKey(), ti); err != nil || len(ti.Chain) != 4 || ti.Holder != "cq-autoparts" {
		t.Fatalf("after a withdrawal and a new pledge: %+v %v", ti, err)
	}
}

// An entry that reached the archive but not this index (its gateway died
// in between) is found before the next action is decided.
func TestTitleEntryMissingFromTheIndexIsFound(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	// A second gateway shares the archive and parties, with an index of its own.
	other := storagetest.Local(t)
	svc2 := exchange.NewService(w.store, other, other, w.store, w.svc.Signer, nil)
	if _, err := svc2.Reindex(ctx, false, time.Time{}, func() {}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.RequestTitle(ctx, w.party(t, "cq-autoparts"), bill, exchange.TitleRequest{Action: "PLEDGE", To: "sg-bank"}); err != nil {
		t.Fatal(err)
	}
	ti, err := w.answer(t, "sg-bank", true) // on the first gateway, whose index never saw the pledge
	if err != nil || ti.Holder != "sg-bank" || len(ti.Chain) != 3 {
		t.Fatalf("accepting a pledge the index had not seen: %+v %v", ti, err)
	}
}
