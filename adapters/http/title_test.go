package http_test

import (
	"slices"
	"strings"
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

// A request body (not a document) is one JSON object of the request's
// members, each named once: anything else is 400 with the JSON pointer of
// what is wrong, and changes nothing. Two members of one name would let
// the gateway and a proxy before it read different actions.
func TestRequestBodiesStrict(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	if r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill")); r.status != 201 {
		t.Fatalf("one bill: %d %s", r.status, r.body)
	}
	const title = "/v1/bills/CQNL2026000187/title"
	for _, c := range []struct {
		path, body string
		pointer    string
	}{
		{title, `{"action":"PLEDGE","to":"cq-rail","action":"TRANSFER"}`, "/action"},
		{title, `{"action":"PLEDGE","To":"cq-rail"}`, "/To"},
		{title, `{"action":"PLEDGE","to":7}`, "/to"},
		{title, `{"action":"PLEDGE","to":"cq-rail"} {}`, ""},
		{title, "{\"action\":\"PLEDGE\",\"reason\":\"\xff\"}", "/reason"},
		{title, `{"to":"cq-rail"}`, "/action"},
		{title, ``, ""},
		{"/v1/shipments/CQNL2026000187/grants", `{"party":"qz-port","party":"cq-rail"}`, "/party"},
		{"/v1/inbox/ack", `{"ids":["a"],"ids":["b"]}`, "/ids"},
		{"/v1/inbox/ack", `{"ids":[]}`, "/ids"},
	} {
		r := e.do(t, "POST", c.path, "cq-autoparts", []byte(c.body))
		if r.status != 400 || !slices.Equal(pointers(r.problem), []string{c.pointer}) {
			t.Errorf("POST %s %q: %d %s; want 400 pointing at %q", c.path, c.body, r.status, r.body, c.pointer)
		}
	}
	if r := e.do(t, "GET", title, "cq-autoparts", nil); r.status != 200 || strings.Contains(string(r.body), "PLEDGE") {
		t.Fatalf("the title after refused requests: %d %s; want no pledge", r.status, r.body)
	}
}

// A method an endpoint does not take is 405 with the methods it takes in
// Allow (HEAD with each GET); a path no endpoint has, as the app routes
// it, is 404.
func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	for _, c := range []struct {
		method, path, allow string
		status              int
	}{
		{"PUT", "/v1/inbox", "GET, HEAD", 405},
		{"DELETE", "/v1/documents/abc", "GET, HEAD, POST", 405}, // (GET of a document, POST of a type)
		{"POST", "/v1/shipments/CQNL2026000187/grants/qz-port", "DELETE, GET, HEAD", 405},
		{"GET", "/v1/bills/CQNL2026000187/title/accept", "POST", 405},
		{"GET", "/v1/nosuch", "", 404},
		{"GET", "/v1/documents/abc/receipt/more", "", 404},
		// Paths the app does not route (it matches exactly: case, slashes, empty segments).
		{"PUT", "/V1/INBOX", "", 404},
		{"PUT", "/v1/inbox/", "", 404},
		{"PUT", "//v1/inbox", "", 404},
		{"POST", "/v1/documents//receipt", "", 404},
		{"POST", "/v1/documents/abc/RECEIPT", "", 404},
	} {
		r := e.do(t, c.method, c.path, "cq-mto", nil)
		if r.status != c.status || r.header.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d, Allow %q; want %d, Allow %q", c.method, c.path, r.status, r.header.Get("Allow"), c.status, c.allow)
		}
	}
}

// A request body (not a document) is JSON in UTF-8 like a document: one
// sent as another media type, in another charset or compressed is 415,
// and changes nothing.
func TestRequestBodiesMediaType(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	if r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill")); r.status != 201 {
		t.Fatalf("one bill: %d %s", r.status, r.body)
	}
	const title = "/v1/bills/CQNL2026000187/title"
	transfer := []byte(`{"action":"TRANSFER","to":"sg-motors"}`)
	for _, hdr := range [][]string{
		{"Content-Type", "text/plain"},
		{"Content-Type", ""},
		{"Content-Type", "application/x-www-form-urlencoded"},
		{"Content-Type", "application/json; charset=iso-8859-1"},
		{"Content-Encoding", "gzip"},
	} {
		for _, path := range []string{title, title + "/accept", "/v1/shipments/CQNL2026000187/grants", "/v1/subscriptions", "/v1/inbox/ack"} {
			r := e.do(t, "POST", path, "cq-autoparts", transfer, hdr...)
			if r.status != 415 || r.problem.Type != "urn:corridor:problem:unsupported-media-type" {
				t.Errorf("POST %s with %s %q: %d %s; want 415", path, hdr[0], hdr[1], r.status, r.body)
			}
		}
	}
	if r := e.do(t, "GET", title, "cq-autoparts", nil); r.status != 200 || strings.Contains(string(r.body), "TRANSFER") {
		t.Fatalf("the title after refused requests: %d %s; want no transfer", r.status, r.body)
	}
	r := e.do(t, "POST", title, "cq-autoparts", transfer, "Content-Type", "application/json; charset=UTF-8")
	if r.status != 201 {
		t.Fatalf("the transfer as application/json; charset=UTF-8: %d %s", r.status, r.body)
	}
}
