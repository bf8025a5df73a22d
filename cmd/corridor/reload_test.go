package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/landsea/corridor/adapters/routing"
	"github.com/landsea/corridor/exchange"
)

const toBankRule = `
  - name: all-declarations-to-bank
    description: every declaration is copied to the bank (a test rule)
    match:
      types: [customs-declaration]
    send:
      - party: sg-bank
`

// SIGHUP reloads the routing file while clients submit: no request fails,
// the next declaration is routed by the new rules and the ones routed
// before keep their recipients; a broken file changes nothing.
func TestSIGHUPReloadsRoutingUnderLoad(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "routing.yaml")
	write := func(data []byte) {
		t.Helper()
		if err := os.WriteFile(file+".tmp", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".tmp", file); err != nil { // whole, as an operator's editor or deploy would
			t.Fatal(err)
		}
	}
	write(routing.DefaultFile())
	cmd := exec.Command(bin, "serve", "--demo", "--demo-dir", "../../deploy/demo", "--listen", "127.0.0.1:0",
		"--data", filepath.Join(dir, "data"), "--routing", file)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	banner, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("banner: %v", err)
	}
	base := strings.Fields(banner[strings.Index(banner, "http://"):])[0]
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	logs := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if l := sc.Text(); strings.Contains(l, "routing rules") {
				logs <- l
			}
		}
	}()
	hup := func(want string) {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l := <-logs:
				if strings.Contains(l, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q in the log after SIGHUP", want)
			}
		}
	}

	// Load: two clients post events until told to stop; every post must succeed.
	var stop atomic.Bool
	var posted, failed atomic.Int64
	var wg sync.WaitGroup
	for c := range 2 {
		wg.Go(func() {
			for i := 0; !stop.Load() && i < 100000; i++ {
				ev := bytes.Replace(readDemo(t, "documents/05-event-gate-in-chongqing.json"), []byte("cqrail-gtin-CSQU3054383-20261105"),
					[]byte(fmt.Sprintf("reload-%d-%06d", c, i)), 1)
				if _, err := postEvent(base, ev); err != nil {
					failed.Add(1)
					t.Errorf("post during reloads: %v", err)
					return
				}
				posted.Add(1)
			}
		})
	}
	// Between reloads, wait until a few more posts went through, so that
	// the reloads fall among requests in flight.
	more := func() {
		t.Helper()
		want := posted.Load() + 5
		for deadline := time.Now().Add(30 * time.Second); posted.Load() < want; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) || failed.Load() > 0 {
				t.Fatalf("the clients stalled at %d posts (%d failed)", posted.Load(), failed.Load())
			}
		}
	}
	withBank := append(slices.Clone(routing.DefaultFile()), []byte(toBankRule)...)
	for i := range 6 { // back and forth under load
		more()
		if i%2 == 0 {
			write(withBank)
		} else {
			write(routing.DefaultFile())
		}
		hup("routing rules reloaded")
	}
	more()
	write(withBank)
	hup("routing rules reloaded")
	more()
	write([]byte("version: 1\nrules:\n  - name: Broken Rule\n    send: []\n"))
	hup("routing rules not reloaded")
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 || posted.Load() == 0 {
		t.Fatalf("%d posts, %d failed during reloads", posted.Load(), failed.Load())
	}
	t.Logf("%d events posted during 8 reloads, none failed", posted.Load())

	// The rules in force are the last good file's: a new declaration goes to the bank too.
	decl := bytes.Replace(readDemo(t, "documents/03-export-declaration.json"), []byte("CQ2026EX0093412"), []byte("CQ2026EX0093499"), 1)
	r := call(t, "POST", base+"/v1/documents/customs-declaration", key("cq-autoparts"), decl)
	var rc exchange.Receipt
	if err := json.Unmarshal(r.body, &rc); r.status != 201 || err != nil {
		t.Fatalf("declaration after the reloads: %d %s", r.status, r.body)
	}
	if !slices.Contains(rc.RoutedBy, "all-declarations-to-bank") || !slices.Contains(rc.Recipients, "sg-bank") {
		t.Fatalf("routed by %v to %v; want the reloaded rule and sg-bank", rc.RoutedBy, rc.Recipients)
	}
	// The demo's declaration, routed at start, is as it was.
	sum := sha256Hex(readDemo(t, "documents/03-export-declaration.json"))
	old := call(t, "GET", base+"/v1/documents/"+exchange.DocumentID("cq-autoparts", "", sum)+"/receipt", key("cq-autoparts"), nil)
	var first exchange.Receipt
	if err := json.Unmarshal(old.body, &first); old.status != 200 || err != nil || slices.Contains(first.Recipients, "sg-bank") {
		t.Fatalf("the demo's declaration after the reloads: %d %+v", old.status, first)
	}
}

func readDemo(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../deploy/demo", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

// corridor routes explain, offline, names the rules the gateway's receipt
// names for the same document.
func TestRoutesExplainMatchesTheReceipt(t *testing.T) {
	_, base, _ := gateway(t, storageFlags{Data: t.TempDir()})
	sum := sha256Hex(readDemo(t, "documents/03-export-declaration.json"))
	r := call(t, "GET", base+"/v1/documents/"+exchange.DocumentID("cq-autoparts", "", sum)+"/receipt", key("cq-autoparts"), nil)
	var rc exchange.Receipt
	if err := json.Unmarshal(r.body, &rc); r.status != 200 || err != nil {
		t.Fatalf("receipt: %d %s", r.status, r.body)
	}
	out, err := runCLI(t, "routes", "explain", "--json", "--bill", "../../deploy/demo/documents/01-one-bill.json",
		"--parties", "../../deploy/demo/parties.json", "../../deploy/demo/documents/03-export-declaration.json")
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	var got struct {
		Routing exchange.Explanation `json:"routing"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Routing.RoutedBy, rc.RoutedBy) || !slices.Equal(got.Routing.Recipients, rc.Recipients) || len(rc.RoutedBy) != 2 {
		t.Fatalf("explain says %v to %v; the receipt %v to %v", got.Routing.RoutedBy, got.Routing.Recipients, rc.RoutedBy, rc.Recipients)
	}
	if out, err := runCLI(t, "routes", "check", "../../deploy/routing/corridor.yaml"); err != nil || !strings.Contains(out, "cn-export-dangerous-goods-to-msa") {
		t.Fatalf("routes check: %v\n%s", err, out)
	}
	bad := writeFile(t, "bad.yaml", "version: 1\nrules:\n  - name: x\n    send: []\n")
	if out, err := runCLI(t, "routes", "check", bad); exitCode(err) != 1 || !strings.Contains(out, ":4: /rules/0/send") {
		t.Fatalf("routes check of a bad file: %v\n%s", err, out)
	}
}
