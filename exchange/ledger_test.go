package exchange_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// The ledger has a format: what the archive holds is read back by reindex
// and by verifiers long after it was written. These golden files fail when
// a Go rename (a field, a tag, a signing member) would change it; change
// them only with a new format number and a reader for the old one.
func TestLedgerFormats(t *testing.T) {
	at := time.Date(2026, 11, 6, 0, 45, 0, 123000000, time.UTC)
	until := at.Add(24 * time.Hour)
	rec := exchange.Record{
		Receipt: exchange.Receipt{ID: "u3up35avngyi4yllhsf3bmmidu", Type: "customs-declaration", SchemaVersion: 2, Sender: "cq-autoparts",
			SHA256: "00ff", ReceivedAt: at, Recipients: []string{"cq-customs", "qz-msa", "qz-port"}, Revision: 2,
			PreviousID: "ulxxm3zreidayjcrzo7unsuq7i", PreviousSHA256: "ff00", RoutedBy: []string{"cn-export-dangerous-goods-to-msa"},
			Signature: "sig"},
		Format: exchange.RecordFormat, IdempotencyKey: "k1", Size: 1563, Refs: []string{"CQ2026EX0093412"},
		Keys: []string{"customs-declaration:CQ2026EX0093412"}, Facts: map[string]string{"declarationNumber": "CQ2026EX0093412"},
		Shipments: []exchange.Link{{Ref: "CQNL2026000187", Doc: "awxr2dys6onicxystauyxwsigu", Opened: at}},
		Members:   []string{"cq-autoparts", "cq-customs"}, Deciders: []string{"cq-customs", "qz-msa"},
		Plan: &exchange.Plan{PlaceOfReceipt: "CNCKG", PortOfLoading: "CNQZH", PortOfDischarge: "SGSIN", PlaceOfDelivery: "SGSIN",
			Legs: []exchange.LegPlan{{Mode: "RAIL", From: "CNCKG", To: "CNQZH", Carrier: "cq-rail", Vehicle: "X8017",
				PlannedDeparture: "2026-11-06T08:00:00+08:00", PlannedArrival: "2026-11-08T10:00:00+08:00"}},
			Containers: []string{"CSQU3054383"}, Consignee: "sg-motors"},
	}
	entry := exchange.TitleEntry{Format: exchange.TitleFormat, Ref: "CQNL2026000187", Seq: 1, Action: "PLEDGE", Actor: "cq-autoparts",
		Recipient: "sg-bank", Reason: "L/C 2611-77", DocumentID: "awxr2dys6onicxystauyxwsigu", DocumentSHA256: "00ff",
		Time: "2026-11-06T00:45:00.123Z", PreviousHash: "abcd"}
	head := exchange.TitleHead{Ref: "CQNL2026000187", Length: 2, LastHash: "ef01", Status: "ISSUED", Holder: "cq-autoparts",
		PendingHash: "ef01", Time: "2026-11-06T00:45:00.123Z"}
	grantUntil := exchange.Grant{Shipment: "CQNL2026000187", Party: "sg-haulage", Publish: true, Until: &until, By: "sg-motors", At: at}
	for name, got := range map[string][]byte{
		"record-v2.json":          mustMarshal(t, rec),
		"title-entry-signing.txt": exchange.TitleSigningBytes(entry),
		"title-head-signing.txt":  exchange.TitleHeadSigningBytes(head),
		"receipt-signing.txt":     exchange.SigningBytes(rec.Receipt),
		"grant-view.json":         mustMarshal(t, grantUntil),
	} {
		file := "testdata/" + name
		if *update {
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("%s: %v (run with -update once to write it)", file, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s changed:\n got %s\nwant %s", name, got, want)
		}
	}
	// And the archived record reads back as it was written.
	raw, _ := os.ReadFile("testdata/record-v2.json")
	var back exchange.Record
	if err := json.Unmarshal(raw, &back); err != nil || !reflect.DeepEqual(back, rec) {
		t.Fatalf("record-v2.json reads back as %+v (%v)", back, err)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
