package exchange

import (
	"crypto/ed25519"
	"encoding/base64"
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
	m := map[string]any{ // encoding/json sorts map keys
		"id": r.ID, "type": r.Type, "schemaVersion": r.SchemaVersion, "sender": r.Sender,
		"sha256": r.SHA256, "receivedAt": r.ReceivedAt.UTC().Format(time.RFC3339Nano), "recipients": recipients,
	}
	if r.Revision > 1 { // absent on first revisions, so their signatures stay as they were
		m["revision"], m["previousId"], m["previousSha256"] = r.Revision, r.PreviousID, r.PreviousSHA256
	}
	if len(r.RoutedBy) > 0 {
		m["routedBy"] = r.RoutedBy
	}
	return canonical(m)
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
