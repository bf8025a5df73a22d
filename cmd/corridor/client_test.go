package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/landsea/corridor/exchange"
)

// submit, pull and track against a running gateway, as a user runs them.
func TestClientCommands(t *testing.T) {
	_, base, _ := gateway(t, storageFlags{Data: t.TempDir()})
	file := "../../deploy/demo/extra/gate-out-singapore.json"
	doc, _ := os.ReadFile(file)

	out, err := runCLI(t, "submit", "--server", base, "--key", key("beibu-line"), file)
	if err != nil {
		t.Fatalf("submit: %v\n%s", err, out)
	}
	var rc exchange.Receipt
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &rc); err != nil || rc.Type != "tracking-event" {
		t.Fatalf("submit printed %q", out)
	}
	// A refused document: exit 1 and the problems on stderr.
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, bytes.Replace(doc, []byte(`"containerNumber": "CSQU3054383"`), []byte(`"containerNumber": "CSQU3054384"`), 1), 0o600)
	out, err = runCLI(t, "submit", "--server", base, "--key", key("beibu-line"), bad)
	if exitCode(err) != 1 || !strings.Contains(out, "/containerNumber: Check digit should be 3, not 4") {
		t.Fatalf("submit of a bad document: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "submit", "--server", base, file); err == nil {
		t.Fatal("submit without a key succeeded")
	}

	// The consignee saves its inbox's exact bytes and acks it.
	dir := t.TempDir()
	for {
		out, err = runCLI(t, "pull", "--server", base, "--key", key("sg-motors"), "--limit", "100", "--out", dir, "--ack")
		if err != nil {
			t.Fatalf("pull: %v\n%s", err, out)
		}
		if !strings.Contains(out, "saved") {
			break
		}
	}
	saved, err := os.ReadFile(filepath.Join(dir, rc.ID+".json"))
	if err != nil || !bytes.Equal(saved, doc) {
		t.Fatalf("saved document differs from the submitted bytes (%v)", err)
	}
	out, err = runCLI(t, "pull", "--server", base, "--key", key("sg-motors"))
	if err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("inbox after ack: %v %q", err, out)
	}

	out, err = runCLI(t, "track", "--server", base, "--key", key("sg-motors"), "CSQU3054383")
	if err != nil || !strings.Contains(out, "EQUIPMENT/GTOT at SGSIN") || !strings.Contains(out, "one bill held by cq-mto") {
		t.Fatalf("track: %v\n%s", err, out)
	}
	outsider := addParty(t, base, "outsider-line", "carrier")
	if _, err := runCLI(t, "track", "--server", base, "--key", outsider, "CSQU3054383"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("track by an outsider: %v", err)
	}
}

// corridor verify title: the demo's saved chain holds, with the key given
// or fetched; an edited copy fails, naming the entry.
func TestVerifyTitleCommand(t *testing.T) {
	_, base, _ := gateway(t, storageFlags{Data: t.TempDir()})
	r := call(t, "GET", base+"/v1/bills/CQNL2026000187/title", key("sg-bank"), nil)
	if r.status != 200 {
		t.Fatalf("title: %d %s", r.status, r.body)
	}
	dir := t.TempDir()
	saved := filepath.Join(dir, "title.json")
	os.WriteFile(saved, r.body, 0o600)
	pub := decode[struct {
		PublicKey string `json:"publicKey"`
	}](t, call(t, "GET", base+"/v1/receipt-key", key("sg-bank"), nil)).PublicKey

	if out, err := runCLI(t, "verify", "title", saved, "--public-key", pub); err != nil || !strings.Contains(out, "holds: 7 entries, SURRENDERED, held by cq-mto") {
		t.Fatalf("verify with the key: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "verify", "title", saved, "--server", base, "--key", key("sg-bank")); err != nil {
		t.Fatalf("verify with the key fetched: %v\n%s", err, out)
	}
	edited := filepath.Join(dir, "edited.json")
	os.WriteFile(edited, bytes.Replace(r.body, []byte(`"recipient":"sg-motors"`), []byte(`"recipient":"cq-rail"`), 1), 0o600)
	out, err := runCLI(t, "verify", "title", edited, "--public-key", pub)
	if exitCode(err) != 1 || !strings.Contains(out, "entry 3: its hash does not match its contents") {
		t.Fatalf("verify of an edited chain: %v\n%s", err, out)
	}
	// A key that cannot be read is a usage error (exit 2 from main), not a verdict.
	if _, err := runCLI(t, "verify", "title", saved, "--public-key", "bm90IGEga2V5"); err == nil || exitCode(err) == 1 {
		t.Fatalf("verify with a bad key: %v", err)
	}
}
