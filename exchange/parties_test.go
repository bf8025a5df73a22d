package exchange_test

import (
	"context"
	"slices"
	"testing"

	"github.com/landsea/corridor/exchange"
)

// A party's name is printable text (lists print it: a line break or an
// escape sequence could forge lines), each role is given once, and a
// disabled party gets no new key (it would never work).
func TestPartyChecks(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	ok := exchange.Party{ID: "th-importer", Name: "Bangkok Auto Import", Roles: []exchange.Role{exchange.RoleConsignee}, Country: "TH"}
	for _, c := range []struct {
		change  func(p *exchange.Party)
		pointer string
	}{
		{func(p *exchange.Party) { p.Name = "Fake\nfake-party  Fake  [bank]  active" }, "/name"},
		{func(p *exchange.Party) { p.Name = "Bold \x1b[1mname" }, "/name"},
		{func(p *exchange.Party) { p.Name = " padded" }, "/name"},
		{func(p *exchange.Party) { p.Name = "bad \xff utf-8" }, "/name"},
		{func(p *exchange.Party) { p.Name = "Bank \u202eknab-ekaf" }, "/name"}, // a bidi override
		{func(p *exchange.Party) { p.Name = "Two\u2028lines" }, "/name"},
		{func(p *exchange.Party) { p.Name = "zero\u200bwidth" }, "/name"},
		{func(p *exchange.Party) {
			p.Roles = []exchange.Role{exchange.RoleConsignee, exchange.RoleBank, exchange.RoleConsignee}
		}, "/roles/2"},
	} {
		p := ok
		c.change(&p)
		_, err := w.svc.CreateParty(ctx, p)
		if code(err) != exchange.CodeInvalid || !slices.Equal(problemPointers(err), []string{c.pointer}) {
			t.Errorf("party %+v: %v; want invalid at %s", p, err, c.pointer)
		}
	}
	named := ok
	named.Name = "Importadora Bangkok — 曼谷\u3000汽车进口\u00a0Co."
	if _, err := w.svc.CreateParty(ctx, named); err != nil {
		t.Fatalf("a name in other scripts, with their spaces: %v", err)
	}
	if err := w.svc.DisableParty(ctx, named.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.svc.IssueKey(ctx, named.ID); code(err) != exchange.CodeConflict {
		t.Fatalf("a key for a disabled party: %v; want a conflict", err)
	}
}
