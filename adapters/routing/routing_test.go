package routing_test

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/landsea/corridor/adapters/routing"
)

// The embedded default is the demo's commented file, byte for byte, and it
// parses.
func TestDefaultIsTheDeployedFile(t *testing.T) {
	deployed, err := os.ReadFile("../../deploy/routing/corridor.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(deployed, routing.DefaultFile()) {
		t.Fatal("adapters/routing/default.yaml differs from deploy/routing/corridor.yaml: copy one onto the other")
	}
	r := routing.Default()
	if len(r.Rules) < 3 || r.Rules[0].Name != "cn-export-dangerous-goods-to-msa" || !r.Rules[0].Decides {
		t.Fatalf("default rules: %+v", r.Rules)
	}
}

// A broken file is refused whole, with the line and pointer of every
// problem.
func TestBadFileRefusedWithEveryProblem(t *testing.T) {
	file := `version: 1
rules:
  - name: ok-rule
    send:
      - party: qz-msa
  - name: ok-rule
    match:
      kinds: [EXPORTS]
      hs: ["3604-3601"]
    send:
      - role: port
        party: qz-port
  - name: Bad Name
    send: []
    colour: blue
`
	_, err := routing.Parse("bad.yaml", []byte(file))
	var e *routing.Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse = %v, want *routing.Error", err)
	}
	got := map[string]int{}
	for _, p := range e.Problems {
		got[p.Pointer] = p.Line
	}
	for ptr, line := range map[string]int{
		"/rules/1/match/kinds/0": 8,  // not a kind
		"/rules/1/send/0":        11, // party and role together
		"/rules/2/name":          13, // pattern
		"/rules/2/send":          14, // empty
		"/rules/2":               13, // colour is no field
	} {
		if l, ok := got[ptr]; !ok || l != line {
			t.Errorf("problem at %s: line %d (found %v); want line %d\nall: %v", ptr, l, ok, line, e.Problems)
		}
	}
	// The schema's problems come first; the rules' own (a name used twice,
	// a range upside down) once the schema holds.
	fixed := strings.NewReplacer("EXPORTS", "EXPORT", "        party: qz-port\n", "", "Bad Name", "bad-name", "send: []", "send: [{party: x1}]", "    colour: blue\n", "").Replace(file)
	_, err = routing.Parse("bad.yaml", []byte(fixed))
	if !errors.As(err, &e) {
		t.Fatalf("Parse of the file with only rule problems = %v", err)
	}
	var ptrs []string
	for _, p := range e.Problems {
		ptrs = append(ptrs, p.Pointer)
	}
	if want := []string{"/rules/1/name", "/rules/1/match/hs/0"}; !slices.Equal(ptrs, want) {
		t.Fatalf("problems %v, want %v: %v", ptrs, want, e.Problems)
	}
	for _, bad := range []string{"", "version: 1\nrules: [", "- a\n- b", "version: 2\nrules: []", "a: &x 1\nb: *x"} {
		if _, err := routing.Parse("bad.yaml", []byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted it", bad)
		}
	}
}

// FuzzParse: any file is parsed or refused, without panicking, and what is
// accepted parses again to the same rules.
func FuzzParse(f *testing.F) {
	f.Add(routing.DefaultFile())
	f.Add([]byte("version: 1\nrules: []\n"))
	f.Add([]byte("version: 1\nrules:\n  - name: a1\n    match: {hs: [\"01-02\"]}\n    send: [{role: port, routePlace: portOfLoading}]\n"))
	f.Add([]byte("a: &x [*x]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := routing.Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		again, err := routing.Parse("fuzz.yaml", data)
		if err != nil || len(again.Rules) != len(r.Rules) {
			t.Fatalf("parsed once, not twice: %v", err)
		}
	})
}
