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
