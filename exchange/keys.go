package exchange

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// APIKey is a party's key as stored: its id, a salt and the SHA-256 of
// salt and secret. The secret itself is shown once and never stored.
type APIKey struct {
	ID        string    `json:"id"`
	Party     string    `json:"party"`
	Salt      string    `json:"salt"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"createdAt"`
	Revoked   bool      `json:"revoked,omitempty"`
}

// A key as handed out reads "cor.<id>.<secret>": the id finds the stored
// record, the secret is checked against its hash. A secret is 256 random
// bits, so a salted fast hash is enough (no password stretching needed).
const keyPrefix = "cor."

var keyIDRE = regexp.MustCompile(`^[a-z0-9-]{8,80}$`)

// NewAPIKey makes a random key for a party. It returns the key to show
// once and the record to store.
func NewAPIKey(party string, now time.Time) (string, APIKey, error) {
	var id [8]byte
	var secret [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", APIKey{}, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", APIKey{}, err
	}
	return keyWith(party, hex.EncodeToString(id[:]), base64.RawURLEncoding.EncodeToString(secret[:]), now)
}

// DemoKey returns the fixed, public key of a demo party. Only `serve --demo`
// installs such keys.
func DemoKey(party string, now time.Time) (string, APIKey, error) {
	return keyWith(party, "demo-"+party, "demo", now)
}

func keyWith(party, id, secret string, now time.Time) (string, APIKey, error) {
	var salt [16]byte
	if _, err := rand.Read(salt[:]); err != nil {
		return "", APIKey{}, err
	}
	k := APIKey{ID: id, Party: party, Salt: hex.EncodeToString(salt[:]), CreatedAt: now.UTC()}
	k.Hash = k.hash(secret)
	return keyPrefix + id + "." + secret, k, nil
}

func (k APIKey) hash(secret string) string {
	sum := sha256.Sum256([]byte(k.Salt + "." + secret))
	return hex.EncodeToString(sum[:])
}

// Matches reports, in constant time, whether secret is this key's.
func (k APIKey) Matches(secret string) bool {
	return subtle.ConstantTimeCompare([]byte(k.hash(secret)), []byte(k.Hash)) == 1
}

// ParseKey splits a presented key into its id and secret.
func ParseKey(key string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(key, keyPrefix)
	if ok {
		id, secret, ok = strings.Cut(rest, ".")
	}
	if !ok || !keyIDRE.MatchString(id) || secret == "" || len(secret) > 128 {
		return "", "", fmt.Errorf("malformed API key")
	}
	return id, secret, nil
}
