package exchange_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
)

// mapSigningBytes is how SigningBytes built its bytes first: a map that
// encoding/json sorts. Receipts signed since must verify against it.
func mapSigningBytes(r exchange.Receipt) []byte {
	recipients := r.Recipients
	if recipients == nil {
		recipients = []string{}
	}
	m := map[string]any{
		"id": r.ID, "type": r.Type, "schemaVersion": r.SchemaVersion, "sender": r.Sender,
		"sha256": r.SHA256, "receivedAt": r.ReceivedAt.UTC().Format(time.RFC3339Nano), "recipients": recipients,
	}
	if r.Revision > 1 {
		m["revision"], m["previousId"], m["previousSha256"] = r.Revision, r.PreviousID, r.PreviousSHA256
	}
	if len(r.RoutedBy) > 0 {
		m["routedBy"] = r.RoutedBy
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(m)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// TestSigningBytesAsMap: the signing bytes are those of the map they were
// first built from, for every shape of receipt.
func TestSigningBytesAsMap(t *testing.T) {
	at := time.Date(2026, 11, 5, 8, 0, 0, 120000000, time.FixedZone("CST", 8*3600))
	odd := "a&b <c> \"d\" \\ é \u2028 \x01 \xff"
	for _, rev := range []int{0, 1, 2, 7} {
		for _, prev := range []string{"", "ulxxm3zreidayjcrzo7unsuq7i"} {
			for _, routed := range [][]string{nil, {}, {"rule-1", odd}} {
				for _, to := range [][]string{nil, {}, {"cq-customs", odd}} {
					r := exchange.Receipt{ID: "abc", Type: odd, SchemaVersion: rev + 1, Sender: "cq-mto", SHA256: "00ff",
						ReceivedAt: at.Add(time.Duration(rev) * time.Nanosecond), Recipients: to, Revision: rev,
						PreviousID: prev, PreviousSHA256: prev, RoutedBy: routed, Signature: "ignored"}
					if got, want := exchange.SigningBytes(r), mapSigningBytes(r); !bytes.Equal(got, want) {
						t.Fatalf("receipt %+v:\n got %s\nwant %s", r, got, want)
					}
				}
			}
		}
	}
}
