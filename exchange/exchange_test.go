package exchange_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
)

func TestKeys(t *testing.T) {
	plain, k, err := exchange.NewAPIKey("cq-mto", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, secret, err := exchange.ParseKey(plain)
	if err != nil || id != k.ID {
		t.Fatalf("ParseKey(%q) = %q, %v", plain, id, err)
	}
	if !k.Matches(secret) || k.Matches(secret+"x") || k.Matches("") {
		t.Fatal("Matches accepts the wrong secret or refuses the right one")
	}
	if strings.Contains(k.Hash, secret) || k.Salt == "" || len(k.Hash) != 64 {
		t.Fatalf("stored key %+v is not a salted hash", k)
	}
	_, k2, _ := exchange.NewAPIKey("cq-mto", time.Now())
	if k2.ID == k.ID || k2.Salt == k.Salt {
		t.Fatal("two keys share an id or a salt")
	}
	for _, bad := range []string{"", "cor.", "cor.abc", "Bearer x", "cor.UPPER0000.secret", "cor.0123456789abcdef."} {
		if _, _, err := exchange.ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

func TestDocumentID(t *testing.T) {
	sum := bytes.Repeat([]byte{1}, 32)
	a := exchange.DocumentID("cq-mto", "", sum)
	if a != exchange.DocumentID("cq-mto", "", sum) || !exchange.ValidDocumentID(a) {
		t.Fatalf("id %q is not stable or not valid", a)
	}
	for _, other := range []string{exchange.DocumentID("cq-rail", "", sum), exchange.DocumentID("cq-mto", "k1", sum),
		exchange.DocumentID("cq-mto", "", bytes.Repeat([]byte{2}, 32))} {
		if other == a {
			t.Fatal("different submissions share an id")
		}
	}
	// A document named by its number: stable, of the same shape, and
	// apart from ids of keys or bytes (a sender could choose an
	// Idempotency-Key reading like a number).
	n := exchange.NamedDocumentID("tracking-event:cq-rail:e-1")
	if n != exchange.NamedDocumentID("tracking-event:cq-rail:e-1") || !exchange.ValidDocumentID(n) ||
		n == exchange.NamedDocumentID("tracking-event:cq-rail:e-2") || n == exchange.NamedDocumentID("tracking-event:beibu-line:e-1") ||
		n == exchange.DocumentID("cq-rail", "tracking-event:cq-rail:e-1", nil) || n == exchange.DocumentID("", "tracking-event:cq-rail:e-1", nil) {
		t.Fatalf("named id %q is not stable, not valid, or not apart", n)
	}
}

// The signing bytes are RFC 8785 canonical JSON: a golden value, so a change
// that would break verifiers outside Go shows.
func TestSigningBytes(t *testing.T) {
	r := exchange.Receipt{ID: "abc", Type: "one-bill", SchemaVersion: 1, Sender: "cq-mto", SHA256: "00ff",
		ReceivedAt: time.Date(2026, 11, 5, 8, 0, 0, 120000000, time.FixedZone("CST", 8*3600)), Recipients: []string{"a&b", "sg-motors"}}
	want := `{"id":"abc","receivedAt":"2026-11-05T00:00:00.12Z","recipients":["a&b","sg-motors"],"schemaVersion":1,"sender":"cq-mto","sha256":"00ff","type":"one-bill"}`
	if got := string(exchange.SigningBytes(r)); got != want {
		t.Fatalf("signing bytes\n got %s\nwant %s", got, want)
	}
	s, _ := exchange.NewSigner(bytes.Repeat([]byte{9}, 32))
	r.Signature = s.Sign(r)
	if err := exchange.VerifyReceipt(s.PublicKey(), r); err != nil {
		t.Fatal(err)
	}
	r.SHA256 = "00fe"
	if exchange.VerifyReceipt(s.PublicKey(), r) == nil {
		t.Fatal("a changed receipt verified")
	}
}

// FuzzParseKey: any presented key parses or is refused without panicking,
// and what parses puts back together into the same key.
func FuzzParseKey(f *testing.F) {
	plain, _, _ := exchange.NewAPIKey("cq-mto", time.Now())
	f.Add(plain)
	f.Add("cor.demo-sg-motors.demo")
	f.Add("cor..")
	f.Fuzz(func(t *testing.T, key string) {
		id, secret, err := exchange.ParseKey(key)
		if err == nil && "cor."+id+"."+secret != key {
			t.Fatalf("ParseKey(%q) = %q, %q", key, id, secret)
		}
	})
}
