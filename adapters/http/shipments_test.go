package http_test

import (
	"encoding/json"
	"slices"
	"testing"

	httpapi "github.com/landsea/corridor/adapters/http"
)

// withFields returns an example document with top-level fields replaced.
func withFields(t *testing.T, typ string, kv ...any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(example(t, typ), &m); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	return b
}

// The statuses of shipment membership, per route of entry: the rules are
// tested in exchange; here, that each refusal maps to its status with the
// pointer of the reference.
func TestShipmentMembershipStatuses(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	if r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill")); r.status != 201 {
		t.Fatalf("one bill: %d %s", r.status, r.body)
	}
	manifest := withFields(t, "cargo-manifest", "carrier", "outsider", "customsAuthority", "cq-customs",
		"bills", []any{map[string]any{"transportDocumentReference": "CQNL2026000187", "containerNumbers": []any{"CSQU3054383", "OOLU8123457"},
			"numberOfPackages": 800, "grossWeight": 20700.5}})
	for _, c := range []struct {
		name, typ, party string
		body             []byte
		status           int
		pointer          string
	}{
		{"event", "tracking-event", "outsider", withFields(t, "tracking-event", "publisher", "outsider"), 403, "/billReference"},
		{"declaration", "customs-declaration", "outsider", withFields(t, "customs-declaration", "declarant", "outsider"), 403, "/billReference"},
		{"manifest", "cargo-manifest", "outsider", manifest, 403, "/bills/0/transportDocumentReference"},
		{"rail note", "rail-consignment-note", "outsider", withFields(t, "rail-consignment-note", "carrier", "outsider"), 403, "/oneBillReference"},
		{"event for a bill not issued", "tracking-event", "outsider", withFields(t, "tracking-event", "publisher", "outsider", "billReference", "CQNL2099000001"), 409, "/billReference"},
		{"event by a member", "tracking-event", "cq-rail", example(t, "tracking-event"), 201, ""},
	} {
		r := e.do(t, "POST", "/v1/documents/"+c.typ, c.party, c.body)
		if r.status != c.status || (c.pointer != "" && !slices.Equal(pointers(r.problem), []string{c.pointer})) {
			t.Errorf("%s: %d %s; want %d at %s", c.name, r.status, r.body, c.status, c.pointer)
		}
	}
	for _, c := range []struct {
		party, path string
		status      int
	}{
		{"sg-motors", "/v1/shipments/CQNL2026000187", 200},
		{"sg-motors", "/v1/shipments/CQNL2026000187?limit=1&order=desc", 200},
		{"corridor-ops", "/v1/shipments/CQNL2026000187", 200},
		{"outsider", "/v1/shipments/CQNL2026000187", 404},
		{"sg-motors", "/v1/shipments/CQNL2026000187?limit=1001", 400},
		{"sg-motors", "/v1/shipments/CQNL2026000187?limit=0", 400},
		{"sg-motors", "/v1/shipments/CQNL2026000187?order=up", 400},
		{"sg-motors", "/v1/shipments/CQNL2026000187?cursor=%21%21", 400},
		{"sg-motors", "/v1/shipments", 200},
		{"corridor-ops", "/v1/shipments?status=ARRIVED&mode=SEA&location=SGSIN&from=2026-01-01T00:00:00Z&limit=10", 200},
		{"sg-motors", "/v1/shipments?from=yesterday", 400},
		{"sg-motors", "/v1/shipments?limit=201", 400},
		{"", "/v1/shipments", 401},
	} {
		if r := e.do(t, "GET", c.path, c.party, nil); r.status != c.status {
			t.Errorf("GET %s by %s: %d %s; want %d", c.path, c.party, r.status, r.body, c.status)
		}
	}
	// A container in two shipments the caller takes part in: 300 and the list.
	if r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", withFields(t, "one-bill", "transportDocumentReference", "CQNL2026000999")); r.status != 201 {
		t.Fatalf("second bill: %d %s", r.status, r.body)
	}
	r := e.do(t, "GET", "/v1/shipments/CSQU3054383", "cq-mto", nil)
	var choices struct {
		Shipments []struct{ Ref string } `json:"shipments"`
	}
	if err := json.Unmarshal(r.body, &choices); r.status != 300 || err != nil || len(choices.Shipments) != 2 {
		t.Fatalf("container in two shipments: %d %s", r.status, r.body)
	}
}

func TestGrantStatuses(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	if r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill")); r.status != 201 {
		t.Fatalf("one bill: %d %s", r.status, r.body)
	}
	const grants = "/v1/shipments/CQNL2026000187/grants"
	e.statuses(t, []call{
		{"POST", grants, "sg-motors", `{"party":"outsider","publish":true}`, 201},
		{"POST", grants, "sg-motors", `{"party":"outsider","until":"2020-01-01T00:00:00Z"}`, 422},
		{"POST", grants, "sg-motors", `{"party":"nobody-here"}`, 422},
		{"POST", grants, "sg-motors", `{"who":"outsider"}`, 400},
		{"POST", grants, "corridor-ops", `{"party":"outsider"}`, 403},
		{"POST", grants, "cq-customs", `{"party":"outsider"}`, 404},
		{"GET", grants, "sg-motors", "", 200},
		{"GET", grants + "/outsider", "outsider", "", 200},
		{"GET", grants, "outsider", "", 403},
		{"GET", grants + "/cq-customs", "sg-motors", "", 404},
		{"DELETE", grants + "/outsider", "cq-rail", "", 403},
		{"DELETE", grants + "/outsider", "sg-motors", "", 204},
		{"DELETE", grants + "/outsider", "sg-motors", "", 404},
		{"GET", "/v1/shipments/CQNL2026000187", "outsider", "", 404},
	})
}

func TestEventQueryStatuses(t *testing.T) {
	e := newEnv(t, httpapi.Config{}, nil, nil)
	if r := e.do(t, "POST", "/v1/documents/one-bill", "cq-mto", example(t, "one-bill")); r.status != 201 {
		t.Fatalf("one bill: %d %s", r.status, r.body)
	}
	for path, status := range map[string]int{
		"/v1/events?transportDocumentReference=CQNL2026000187&eventType=EQUIPMENT&sort=desc&limit=10": 200,
		"/v1/events?eventDateTimeMin=2026-11-01T00:00:00Z&eventDateTimeMax=2026-12-01T00:00:00Z":      200,
		"/v1/events?sort=sideways":              400,
		"/v1/events?eventDateTimeMin=yesterday": 400,
		"/v1/events?limit=0":                    400,
		"/v1/events?cursor=%21%21":              400,
	} {
		if r := e.do(t, "GET", path, "sg-motors", nil); r.status != status {
			t.Errorf("GET %s: %d %s; want %d", path, r.status, r.body, status)
		}
	}
}

// call is a request and the status it must get.
type call struct {
	method, path, party, body string
	status                    int
}

// statuses makes each call in turn and checks its status.
func (e *env) statuses(t *testing.T, calls []call) {
	t.Helper()
	for _, c := range calls {
		var body []byte
		if c.body != "" {
			body = []byte(c.body)
		}
		if r := e.do(t, c.method, c.path, c.party, body); r.status != c.status {
			t.Errorf("%s %s by %s %s: %d %s; want %d", c.method, c.path, c.party, c.body, r.status, r.body, c.status)
		}
	}
}
