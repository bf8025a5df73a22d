package http_test

import (
	"testing"

	httpapi "github.com/landsea/corridor/adapters/http"
	"github.com/landsea/corridor/exchange"
)

// The statuses of title actions; the rules are tested in exchange.
func TestTitleStatuses(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	if _, err := e.svc.CreateParty(t.Context(), exchange.Party{ID: "sg-bank", Name: "Bank", Roles: []exchange.Role{exchange.RoleBank}, Country: "SG"}); err != nil {
		t.Fatal(err)
	}
	e.keys["sg-bank"], _, _ = e.svc.IssueKey(t.Context(), "sg-bank")
	if r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill")); r.status != 201 {
		t.Fatalf("one bill: %d %s", r.status, r.body)
	}
	const title = "/v1/bills/CQNL2026000187/title"
	e.statuses(t, []call{
		{"GET", title, "sg-motors", "", 200},
		{"GET", title, "corridor-ops", "", 200},
		{"GET", title, "outsider", "", 404},
		{"POST", title, "sg-motors", `{"action":"TRANSFER","to":"sg-motors"}`, 403},
		{"POST", title, "cq-autoparts", `{"action":"PLEDGE","to":"cq-rail"}`, 422},
		{"POST", title, "cq-autoparts", `{"action":"BURN"}`, 422},
		{"POST", title, "cq-autoparts", `{"verb":"PLEDGE"}`, 400},
		{"POST", title + "/accept", "sg-bank", "", 409},
		{"POST", title, "cq-autoparts", `{"action":"PLEDGE","to":"sg-bank","reason":"letter of credit 2611-77"}`, 201},
		{"POST", title, "cq-autoparts", `{"action":"TRANSFER","to":"sg-motors"}`, 409},
		{"POST", title + "/accept", "sg-motors", "", 403},
		{"POST", title + "/accept", "sg-bank", `{"nope":1}`, 400},
		{"POST", title + "/accept", "sg-bank", `{"reason":"funds advanced"}`, 201},
		{"POST", title, "sg-bank", `{"action":"RELEASE"}`, 201},
		{"POST", title + "/reject", "cq-autoparts", "", 201},
		{"GET", "/v1/bills/NOSUCHBILL/title", "sg-motors", "", 404},
	})
}

func TestRoutesStatuses(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	e.svc.SetRules(&exchange.Rules{Version: 1, Rules: []exchange.Rule{{Name: "r1", Send: []exchange.Target{{Party: "cq-customs"}}}}})
	for party, status := range map[string]int{"corridor-ops": 200, "cq-customs": 200, "sg-motors": 403, "": 401} {
		if r := e.do(t, "GET", "/v1/routes", party, nil); r.status != status {
			t.Errorf("GET /v1/routes by %q: %d %s; want %d", party, r.status, r.body, status)
		}
	}
}
