package exchange_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/landsea/corridor/exchange"
)

func TestHSMatches(t *testing.T) {
	for _, c := range []struct {
		pattern, code string
		want          bool
	}{
		{"85", "850760", true}, {"8507", "850760", true}, {"8507.60", "850760", true}, {"8507.60", "85076010", true},
		{"8507.60", "850710", false}, {"84", "850760", false}, {"07-09", "081060", true}, {"07-09", "090111", true},
		{"07-09", "100190", false}, {"3601-3604", "360300", true}, {"3601-3604", "360500", false}, {"3601-36", "360300", false},
	} {
		if got := exchange.HSMatches(c.pattern, c.code); got != c.want {
			t.Errorf("HSMatches(%q, %q) = %v, want %v", c.pattern, c.code, got, c.want)
		}
	}
}

// Rule matching, table-driven: each field of a match alone, and together.
func TestRuleMatching(t *testing.T) {
	yes, no := true, false
	plan := &exchange.Plan{PlaceOfReceipt: "CNCKG", PortOfLoading: "CNQZH", PortOfDischarge: "SGSIN", PlaceOfDelivery: "SGSIN"}
	doc := exchange.DocFacts{Type: "customs-declaration", Version: 2, Kind: "EXPORT", Borders: []string{"CN"},
		HS: []string{"870899", "850760"}, DangerousGoods: true, Places: []string{"CNCKG", "CNQZH", "SGSIN"}, Route: plan}
	for _, c := range []struct {
		name string
		m    exchange.Match
		want bool
	}{
		{"empty matches all", exchange.Match{}, true},
		{"type", exchange.Match{Types: []string{"customs-declaration"}}, true},
		{"other type", exchange.Match{Types: []string{"sea-bill"}}, false},
		{"version", exchange.Match{Versions: []int{1}}, false},
		{"kind", exchange.Match{Kinds: []string{"EXPORT", "TRANSIT"}}, true},
		{"other kind", exchange.Match{Kinds: []string{"IMPORT"}}, false},
		{"border", exchange.Match{Borders: []string{"CN"}}, true},
		{"other border", exchange.Match{Borders: []string{"SG", "MY"}}, false},
		{"HS subheading", exchange.Match{HS: []string{"8507.60"}}, true},
		{"HS chapter range", exchange.Match{HS: []string{"01-24"}}, false},
		{"dangerous goods", exchange.Match{DangerousGoods: &yes}, true},
		{"no dangerous goods", exchange.Match{DangerousGoods: &no}, false},
		{"place on the route", exchange.Match{Places: []string{"CNQZH"}}, true},
		{"place off the route", exchange.Match{Places: []string{"CNBHY"}}, false},
		{"all together", exchange.Match{Types: []string{"customs-declaration"}, Kinds: []string{"EXPORT"}, Borders: []string{"CN"},
			HS: []string{"85"}, DangerousGoods: &yes, Places: []string{"CNQZH"}}, true},
		{"all but one", exchange.Match{Types: []string{"customs-declaration"}, Kinds: []string{"EXPORT"}, Borders: []string{"CN"},
			HS: []string{"85"}, DangerousGoods: &yes, Places: []string{"CNFAN"}}, false},
	} {
		if got := c.m.Matches(doc); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	parties := []exchange.Party{
		{ID: "qz-port", Roles: []exchange.Role{exchange.RolePort}, Country: "CN", Places: []string{"CNQZH"}},
		{ID: "bh-port", Roles: []exchange.Role{exchange.RolePort}, Country: "CN", Places: []string{"CNBHY"}},
		{ID: "sg-port", Roles: []exchange.Role{exchange.RolePort}, Country: "SG", Places: []string{"SGSIN"}},
		{ID: "gone-port", Roles: []exchange.Role{exchange.RolePort}, Country: "CN", Places: []string{"CNQZH"}, Disabled: true},
	}
	rules := &exchange.Rules{Rules: []exchange.Rule{
		{Name: "loading", Send: []exchange.Target{{Role: exchange.RolePort, RoutePlace: "portOfLoading"}}},
		{Name: "cn-ports", Send: []exchange.Target{{Role: exchange.RolePort, Country: "CN"}}},
		{Name: "at-sgsin", Send: []exchange.Target{{Role: exchange.RolePort, Place: "SGSIN"}, {Party: "nobody"}}},
	}}
	var got []string
	for _, h := range rules.Route(doc, parties) {
		got = append(got, h.Rule+":"+join(h.Parties)+":"+join(h.Missing))
	}
	want := []string{"loading:qz-port:", "cn-ports:qz-port,bh-port:", "at-sgsin:sg-port:nobody"}
	if !slices.Equal(got, want) {
		t.Fatalf("routes %v, want %v", got, want)
	}
}

func join(s []string) string { return strings.Join(s, ",") }

// The demo's export declaration (lithium batteries among auto parts)
// goes to customs, the maritime safety administration and the terminal of
// the port of loading, each of which must release it; the receipt names
// the rules. It is cleared only once all three released it, whatever the
// order, and each change reaches the declarant, the carriers of the legs
// and the port once.
func TestClearanceEveryOrder(t *testing.T) {
	answers := map[string][]byte{
		"cq-customs": demoDoc(t, "04-export-released.json"),
		"qz-msa":     demoDoc(t, "04b-export-msa-released.json"),
		"qz-port":    demoDoc(t, "04c-export-port-released.json"),
	}
	for _, order := range [][]string{
		{"cq-customs", "qz-msa", "qz-port"}, {"cq-customs", "qz-port", "qz-msa"}, {"qz-msa", "cq-customs", "qz-port"},
		{"qz-msa", "qz-port", "cq-customs"}, {"qz-port", "cq-customs", "qz-msa"}, {"qz-port", "qz-msa", "cq-customs"},
	} {
		t.Run(join(order), func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
			rc := w.mustSubmit(t, "cq-autoparts", "customs-declaration", demoDoc(t, "03-export-declaration.json"))
			if want := []string{"cn-export-dangerous-goods-to-msa", "cn-export-release-to-port"}; !slices.Equal(rc.RoutedBy, want) ||
				!slices.Equal(rc.Recipients, []string{"cq-customs", "qz-msa", "qz-port"}) {
				t.Fatalf("receipt routed by %v to %v", rc.RoutedBy, rc.Recipients)
			}
			if err := exchange.VerifyReceipt(w.svc.Signer.PublicKey(), rc); err != nil {
				t.Fatal(err)
			}
			var seen []string
			for _, p := range order {
				w.mustSubmit(t, p, "customs-response", answers[p])
				v, err := w.svc.Shipment(ctx, w.party(t, "cq-autoparts"), bill, exchange.EventQuery{})
				if err != nil {
					t.Fatal(err)
				}
				seen = append(seen, v.Shipment.Customs[0].Status)
			}
			if want := []string{"PENDING", "PENDING", "RELEASED"}; !slices.Equal(seen, want) {
				t.Fatalf("clearance after each answer: %v, want %v", seen, want)
			}
			for _, p := range []string{"cq-autoparts", "cq-rail", "beibu-line", "qz-port"} {
				msgs, _ := w.svc.Pull(ctx, w.party(t, p), 100, 0)
				var got []string
				for _, m := range msgs {
					if m.Type == exchange.TypeClearance {
						got = append(got, string(m.Document))
					}
				}
				if len(got) != 1 || !contains(got[0], `"status":"RELEASED"`) || !contains(got[0], `"previousStatus":"PENDING"`) {
					t.Errorf("%s's clearance messages: %v; want one RELEASED", p, got)
				}
			}
		})
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// Precedence: any rejection, hold or inspection decides the status, in
// that order; then a decider that has not released keeps it pending; a
// conditional release makes the whole conditional. Each change is one
// message.
func TestClearancePrecedence(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	w.mustSubmit(t, "cq-autoparts", "customs-declaration", demoDoc(t, "03-export-declaration.json"))
	at := []string{"2026-11-06T07:00:00+08:00", "2026-11-06T08:00:00+08:00", "2026-11-06T09:00:00+08:00", "2026-11-06T10:00:00+08:00",
		"2026-11-06T11:00:00+08:00", "2026-11-06T12:00:00+08:00", "2026-11-06T13:00:00+08:00"}
	reason := []any{map[string]any{"text": "checked"}}
	steps := []struct {
		party, status string
		want          string
	}{
		{"qz-msa", "HELD", "HELD"},
		{"qz-port", "REJECTED", "REJECTED"},
		{"qz-port", "RELEASED", "HELD"},
		{"cq-customs", "UNDER_INSPECTION", "HELD"},
		{"qz-msa", "CONDITIONAL", "UNDER_INSPECTION"},
		{"cq-customs", "ACCEPTED", "PENDING"},
		{"cq-customs", "RELEASED", "CONDITIONAL"},
	}
	var changes []string
	for i, s := range steps {
		body := patch(t, demoDoc(t, "04-export-released.json"), "customsAuthority", s.party, "status", s.status,
			"responseDateTime", at[i], "reasons", reason, "responseNumber", "R-"+strings.ToUpper(s.party)+"-"+at[i][11:13])
		if s.status == "CONDITIONAL" {
			body = patch(t, body, "conditions", reason, "reasons", nil)
		}
		body = patch(t, body, "responseCode", map[string]string{"HELD": "7", "REJECTED": "3", "RELEASED": "4", "UNDER_INSPECTION": "5", "ACCEPTED": "1"}[s.status])
		if s.status == "CONDITIONAL" {
			body = patch(t, body, "responseCode", nil)
		}
		w.mustSubmit(t, s.party, "customs-response", stripNulls(t, body))
		v, _ := w.svc.Shipment(ctx, w.party(t, "cq-autoparts"), bill, exchange.EventQuery{})
		if got := v.Shipment.Customs[0].Status; got != s.want {
			t.Fatalf("after %s %s: %s, want %s", s.party, s.status, got, s.want)
		}
		if len(changes) == 0 || changes[len(changes)-1] != s.want {
			changes = append(changes, s.want)
		}
	}
	msgs, _ := w.svc.Pull(ctx, w.party(t, "cq-autoparts"), 100, 0)
	var got []string
	for _, m := range msgs {
		if m.Type == exchange.TypeClearance {
			var c exchange.Clearance
			if err := jsonUnmarshal(m.Document, &c); err != nil {
				t.Fatal(err)
			}
			got = append(got, c.Status)
		}
	}
	if !slices.Equal(got, changes) {
		t.Fatalf("clearance messages %v, want one per change %v", got, changes)
	}
}

// Only a party the declaration was routed to for a decision answers it.
func TestAnswerOnlyWhatWasRoutedToYou(t *testing.T) {
	w := newWorld(t)
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	w.mustSubmit(t, "cq-autoparts", "customs-declaration", demoDoc(t, "03-export-declaration.json"))
	w.mustSubmit(t, "sg-motors", "customs-declaration", demoDoc(t, "13-import-declaration.json"))
	// qz-msa takes part in the shipment (the export declaration was routed
	// to it) but was not routed the import declaration.
	body := patch(t, demoDoc(t, "15-import-released.json"), "customsAuthority", "qz-msa")
	if _, err := w.submit(t, "qz-msa", "customs-response", body); exchange.ErrorCode(err) != exchange.CodeForbidden ||
		!slices.Equal(problemPointers(err), []string{"/customsAuthority"}) {
		t.Fatalf("an agency answering what was not routed to it: %v", err)
	}
	// A declaration that does not exist: 409.
	body = patch(t, demoDoc(t, "04b-export-msa-released.json"), "declarationReference", "CQ2026EX9999999")
	if _, err := w.submit(t, "qz-msa", "customs-response", body); exchange.ErrorCode(err) != exchange.CodeConflict {
		t.Fatalf("an answer to no declaration: %v", err)
	}
}

// New rules route the next declaration; those routed before keep their
// recipients and deciders.
func TestNewRulesRouteOnlyWhatComesNext(t *testing.T) {
	w := newWorld(t)
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	first := w.mustSubmit(t, "cq-autoparts", "customs-declaration", demoDoc(t, "03-export-declaration.json"))
	w.svc.SetRules(&exchange.Rules{Version: 1, Rules: []exchange.Rule{{Name: "all-to-bank", Send: []exchange.Target{{Party: "sg-bank"}},
		Match: exchange.Match{Types: []string{"customs-declaration"}}}}})
	second := w.mustSubmit(t, "sg-motors", "customs-declaration", demoDoc(t, "13-import-declaration.json"))
	if !slices.Equal(second.RoutedBy, []string{"all-to-bank"}) || !slices.Contains(second.Recipients, "sg-bank") {
		t.Fatalf("after new rules: %v %v", second.RoutedBy, second.Recipients)
	}
	rc, err := w.svc.Receipt(context.Background(), w.party(t, "cq-autoparts"), first.ID)
	if err != nil || !slices.Equal(rc.RoutedBy, first.RoutedBy) || !slices.Equal(rc.Recipients, first.Recipients) {
		t.Fatalf("the earlier declaration changed: %+v %v", rc, err)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// stripNulls drops top-level members patched to nil.
func stripNulls(t *testing.T, doc []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range m {
		if v == nil || v == "" {
			delete(m, k)
		}
	}
	out, _ := json.Marshal(m)
	return out
}
