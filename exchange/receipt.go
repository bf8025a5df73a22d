package exchange

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// Signer signs receipts with the gateway's Ed25519 key.
type Signer struct{ key ed25519.PrivateKey }

// NewSigner returns a signer for a 32-byte Ed25519 seed.
func NewSigner(seed []byte) (*Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("receipt key: want a 32-byte Ed25519 seed")
	}
	return &Signer{key: ed25519.NewKeyFromSeed(seed)}, nil
}

// PublicKey returns the key that verifies the signer's receipts.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Sign returns the base64url signature of the receipt's signing bytes.
func (s *Signer) Sign(r Receipt) string {
	return base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.key, SigningBytes(r)))
}

// SigningBytes are what a receipt's signature covers: the receipt without
// its signature as RFC 8785 canonical JSON (members sorted by name, no
// spaces, receivedAt in UTC with nanoseconds trimmed of trailing zeros).
func SigningBytes(r Receipt) []byte {
	recipients := r.Recipients
	if recipients == nil {
		recipients = []string{}
	}
	m := signedReceipt{ID: r.ID, Type: r.Type, SchemaVersion: r.SchemaVersion, Sender: r.Sender, SHA256: r.SHA256,
		ReceivedAt: r.ReceivedAt.UTC().Format(time.RFC3339Nano), Recipients: recipients, RoutedBy: r.RoutedBy}
	if r.Revision > 1 { // absent on first revisions, so their signatures stay as they were
		m.Revision, m.PreviousID, m.PreviousSHA256 = &r.Revision, &r.PreviousID, &r.PreviousSHA256
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(m) // strings, ints and string slices only: cannot fail
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// signedReceipt is a receipt's signed members in canonical order (by
// name); a nil pointer or an empty routedBy is left out. (A map encoded
// as canonical() does came out the same, at a map, a sort and a boxed
// value per member.)
type signedReceipt struct {
	ID             string   `json:"id"`
	PreviousID     *string  `json:"previousId,omitempty"`
	PreviousSHA256 *string  `json:"previousSha256,omitempty"`
	ReceivedAt     string   `json:"receivedAt"`
	Recipients     []string `json:"recipients"`
	Revision       *int     `json:"revision,omitempty"`
	RoutedBy       []string `json:"routedBy,omitempty"`
	SchemaVersion  int      `json:"schemaVersion"`
	Sender         string   `json:"sender"`
	SHA256         string   `json:"sha256"`
	Type           string   `json:"type"`
}

// VerifyReceipt checks a receipt's signature against the gateway's public key.
func VerifyReceipt(pub ed25519.PublicKey, r Receipt) error {
	sig, err := base64.RawURLEncoding.DecodeString(r.Signature)
	if err != nil || !ed25519.Verify(pub, SigningBytes(r), sig) {
		return errors.New("receipt signature does not verify")
	}
	return nil
}

// SignBytes signs arbitrary bytes with the receipt key (webhook deliveries).
func (s *Signer) SignBytes(b []byte) []byte { return ed25519.Sign(s.key, b) }
