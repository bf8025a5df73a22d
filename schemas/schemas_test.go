package schemas_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/xeipuuv/gojsonschema"

	"github.com/landsea/corridor/schemas"
)

func example(tb testing.TB, typ string, version int) []byte {
	tb.Helper()
	b, err := schemas.Example(typ, version)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestExamplesAreValid(t *testing.T) {
	types := schemas.Types()
	if len(types) != 7 {
		t.Fatalf("served types = %d, want 7", len(types))
	}
	for _, ti := range types {
		for _, v := range ti.Versions {
			doc, err := schemas.Validate(ti.Type, v, example(t, ti.Type, v))
			if err != nil {
				t.Errorf("%s v%d example: %v", ti.Type, v, err)
				continue
			}
			if doc.Type != ti.Type || doc.Version != v {
				t.Errorf("validated as %s v%d", doc.Type, doc.Version)
			}
			if got, err := schemas.Detect(example(t, ti.Type, v)); err != nil || got != ti.Type {
				t.Errorf("Detect(%s example) = %q, %v", ti.Type, got, err)
			}
		}
	}
}

func TestNewestVersionAndOlderStillAccepted(t *testing.T) {
	if v, err := schemas.Newest("tracking-event"); err != nil || v != 2 {
		t.Fatalf("newest tracking-event = %d, %v; want 2", v, err)
	}
	v1 := example(t, "tracking-event", 1)
	for _, v := range []int{0, 1, 2} {
		if _, err := schemas.Validate("tracking-event", v, v1); err != nil {
			t.Errorf("v1 document at version %d: %v", v, err)
		}
	}
	if _, err := schemas.Validate("tracking-event", 3, v1); !errors.Is(err, schemas.ErrUnknownVersion) {
		t.Errorf("version 3 = %v, want ErrUnknownVersion", err)
	}
	if _, err := schemas.Validate("bill-of-anything", 0, v1); !errors.Is(err, schemas.ErrUnknownType) {
		t.Errorf("unknown type = %v, want ErrUnknownType", err)
	}
}

type invalidCase struct {
	Name    string            `json:"name"`
	Version int               `json:"version"`
	Patch   []json.RawMessage `json:"patch"`
	Want    []string          `json:"want"`
}

// checkCase validates body whole or in parts and checks its problems' pointers
// are want; it returns the problems.
func checkCase(t *testing.T, typ string, v int, body []byte, parts bool, want []string) []schemas.Problem {
	t.Helper()
	schemas.InParts(t, parts)
	_, err := schemas.Validate(typ, v, body)
	var inv *schemas.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("in parts %v: Validate = %v, want an InvalidError", parts, err)
	}
	var got []string
	for _, p := range inv.Problems {
		got = append(got, p.Pointer)
		if p.Detail == "" {
			t.Errorf("problem at %s has no detail", p.Pointer)
		}
	}
	want = slices.Clone(want)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(slices.Compact(got), want) {
		t.Errorf("in parts %v: pointers = %v, want %v\nproblems: %+v", parts, got, want, inv.Problems)
	}
	return inv.Problems
}

// TestInvalidDocuments runs schemas/testdata/invalid/<type>.json: each case
// patches the type's example (RFC 6902 add, replace, remove) and lists
// exactly the pointers the problems must carry. Each runs twice: checked
// whole, as small documents are, and in parts, as large ones are; both must
// find the same problems.
func TestInvalidDocuments(t *testing.T) {
	files, _ := filepath.Glob("testdata/invalid/*.json")
	if len(files) != 7 {
		t.Fatalf("case files = %d, want one per type", len(files))
	}
	for _, f := range files {
		typ := strings.TrimSuffix(filepath.Base(f), ".json")
		var cases []invalidCase
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &cases); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if len(cases) < 10 {
			t.Errorf("%s: %d cases, want at least 10", typ, len(cases))
		}
		for _, c := range cases {
			t.Run(typ+"/"+c.Name, func(t *testing.T) {
				v := max(c.Version, 1) // cases patch the v1 example unless they say
				body := patch(t, example(t, typ, v), c.Patch)
				whole := checkCase(t, typ, v, body, false, c.Want)
				parts := checkCase(t, typ, v, body, true, c.Want)
				if !slices.Equal(whole, parts) {
					t.Errorf("in parts the problems differ:\nwhole: %+v\nparts: %+v", whole, parts)
				}
			})
		}
	}
}

func TestProblemDetailsReadWell(t *testing.T) {
	body := patch(t, example(t, "one-bill", 1), []json.RawMessage{
		json.RawMessage(`{"op":"replace","path":"/containers/0/containerNumber","value":"CSQU3054384"}`),
		json.RawMessage(`{"op":"replace","path":"/legs/1/from/UNLocationCode","value":"CNBHY"}`),
	})
	_, err := schemas.Validate("one-bill", 1, body)
	var inv *schemas.InvalidError
	if !errors.As(err, &inv) {
		t.Fatal(err)
	}
	want := map[string]string{
		"/containers/0/containerNumber": "check digit should be 3, not 4",
		"/legs/1/from/UNLocationCode":   "leg 2 should start where leg 1 ended, CNQZH (Qinzhou), not CNBHY (Beihai)",
	}
	for _, p := range inv.Problems {
		if w, ok := want[p.Pointer]; ok && !strings.EqualFold(p.Detail, w) {
			t.Errorf("%s: %q, want %q", p.Pointer, p.Detail, w)
		}
		delete(want, p.Pointer)
	}
	if len(want) > 0 {
		t.Errorf("missing problems at %v", want)
	}
}

// Each body is refused as malformed, for the reason named.
func TestPrescanRefusesHostileJSON(t *testing.T) {
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	cases := map[string]struct{ body, why string }{
		"empty":             {"", "the body is empty"},
		"trailing data":     {`{"a":1} {"b":2}`, "data after the JSON document"},
		"trailing garbage":  {`{"a":1}x`, "data after the JSON document"},
		"duplicate key":     {`{"a":1,"a":2}`, `the key "a" appears twice`},
		"nested duplicate":  {`{"x":{"a":1,"b":2,"a":3}}`, `the key "a" appears twice`},
		"escaped duplicate": {`{"a":1,"\u0061":2}`, `the key "a" appears twice`},
		"invalid UTF-8":     {"{\"a\":\"\xff\xfe\"}", "not valid UTF-8"},
		"lone surrogate":    {`{"a":"\ud800"}`, "surrogate"},
		"huge exponent":     {`{"totalGrossWeight":1e2000000}`, "exponent out of range"},
		"long number":       {`{"n":` + strings.Repeat("9", 100) + `}`, "longer than 40 characters"},
		"number overflow":   {`{"n":1e309}`, "exponent out of range"},
		"negative overflow": {`{"n":-1e400}`, "exponent out of range"},
		"too deep":          {`{"a":` + deep + `}`, "nesting deeper than 32 levels"},
		"long string":       {`{"a":"` + strings.Repeat("s", schemas.MaxStringLength+1) + `"}`, "string longer than"},
		"long key":          {`{"` + strings.Repeat("k", schemas.MaxStringLength+1) + `":1}`, "member name longer than"},
		"not JSON":          {`<xml/>`, "not valid JSON"},
		"unterminated":      {`{"a":`, "ends too early"},
		"non-string key":    {`{1:2}`, "not valid JSON"},
		"NaN":               {`{"n":NaN}`, "not valid JSON"},
		"Infinity":          {`{"n":-Infinity}`, "not valid JSON"},
		"leading zero":      {`{"n":012}`, "not valid JSON"},
		"single quotes":     {`{'a':1}`, "not valid JSON"},
		"trailing comma":    {`{"a":1,}`, "not valid JSON"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := schemas.Validate("one-bill", 0, []byte(c.body))
			var mal *schemas.MalformedError
			if !errors.As(err, &mal) {
				t.Fatalf("Validate = %v, want a MalformedError", err)
			}
			if !strings.Contains(mal.Detail, c.why) {
				t.Errorf("detail %q, want it to say %q", mal.Detail, c.why)
			}
			if len(mal.Pointer) > 200 {
				t.Errorf("pointer of %d bytes echoes the body", len(mal.Pointer))
			}
		})
	}
	// A document that is not an object is malformed too.
	if _, err := schemas.Validate("one-bill", 0, []byte(`[1,2]`)); err == nil {
		t.Fatal("an array was accepted")
	}
}

func TestDuplicateKeyPointer(t *testing.T) {
	err := schemas.Prescan([]byte(`{"legs":[{"from":1,"from":2}]}`))
	var mal *schemas.MalformedError
	if !errors.As(err, &mal) || mal.Pointer != "/legs/0/from" {
		t.Fatalf("Prescan = %v, want a MalformedError at /legs/0/from", err)
	}
}

func TestContainerNumbers(t *testing.T) {
	for _, ok := range []string{"CSQU3054383", "OOLU8123457", "PCIU7654322", "CBHU9022110", "TGHU1122335"} {
		if err := schemas.CheckContainerNumber(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"CSQU3054384": "check digit should be 3, not 4",
		"CSQX3054383": "a container number is",
		"csqu3054383": "a container number is",
		"CSQU305438":  "a container number is",
	} {
		if err := schemas.CheckContainerNumber(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", bad, err, want)
		}
	}
}

func TestCodeLists(t *testing.T) {
	for _, c := range []string{"CN", "SG", "MY", "VN", "TH", "ID", "LA"} {
		if schemas.CheckCountry(c) != nil || schemas.CountryName(c) == "" {
			t.Errorf("country %s refused", c)
		}
	}
	for _, c := range []string{"CNY", "SGD", "USD", "MYR", "VND", "THB", "IDR", "EUR"} {
		if schemas.CheckCurrency(c) != nil {
			t.Errorf("currency %s refused", c)
		}
	}
	for _, c := range []string{"XX", "UK", "cn"} {
		if schemas.CheckCountry(c) == nil {
			t.Errorf("country %s accepted", c)
		}
	}
	for _, c := range []string{"RMB", "XYZ", "usd"} {
		if schemas.CheckCurrency(c) == nil {
			t.Errorf("currency %s accepted", c)
		}
	}
	for code := range schemas.Places {
		if err := schemas.CheckUNLocode(code); err != nil {
			t.Errorf("corridor place %s: %v", code, err)
		}
	}
	if schemas.CUSRESCode("RELEASED") != "4" || schemas.CUSRESCode("ACCEPTED") != "1" {
		t.Error("CUSRES mapping")
	}
}

// patch applies RFC 6902 add, replace and remove operations.
func patch(t testing.TB, doc []byte, ops []json.RawMessage) []byte {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatal(err)
	}
	for _, raw := range ops {
		var op struct {
			Op    string `json:"op"`
			Path  string `json:"path"`
			Value any    `json:"value"`
		}
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatal(err)
		}
		tokens := strings.Split(op.Path, "/")[1:]
		v = apply(t, v, tokens, op.Op, op.Value)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func apply(t testing.TB, node any, tokens []string, op string, value any) any {
	t.Helper()
	tok := strings.NewReplacer("~1", "/", "~0", "~").Replace(tokens[0])
	last := len(tokens) == 1
	switch n := node.(type) {
	case map[string]any:
		if last {
			if _, ok := n[tok]; !ok && op != "add" {
				t.Fatalf("patch %s: no member %q", op, tok)
			}
			if op == "remove" {
				delete(n, tok)
			} else {
				n[tok] = value
			}
			return n
		}
		n[tok] = apply(t, n[tok], tokens[1:], op, value)
		return n
	case []any:
		if tok == "-" && last && op == "add" {
			return append(n, value)
		}
		i, err := strconv.Atoi(tok)
		if err != nil || i < 0 || i >= len(n) {
			t.Fatalf("patch: bad index %q", tok)
		}
		if last {
			switch op {
			case "remove":
				return slices.Delete(n, i, i+1)
			case "add":
				return slices.Insert(n, i, value)
			}
			n[i] = value
			return n
		}
		n[i] = apply(t, n[i], tokens[1:], op, value)
		return n
	}
	t.Fatalf("patch: cannot walk into %T", node)
	return nil
}

// FuzzValidate: no input may panic the validator, and whatever it accepts
// is one well-formed JSON object.
func FuzzValidate(f *testing.F) {
	for _, ti := range schemas.Types() {
		f.Add(ti.Type, example(f, ti.Type, ti.Newest))
	}
	f.Add("one-bill", []byte(`{"totalGrossWeight":1e2000000}`))
	f.Add("tracking-event", []byte(`{"a":1,"a":2}`))
	f.Add("customs-response", []byte("{\"declarationReference\":\"\xff\"}"))
	types := schemas.Types()
	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		if !slices.ContainsFunc(types, func(ti schemas.TypeInfo) bool { return ti.Type == typ }) {
			typ = types[len(body)%len(types)].Type
		}
		doc, err := schemas.Validate(typ, 0, body)
		if err == nil {
			if doc == nil || doc.Fields == nil || !json.Valid(body) {
				t.Fatalf("accepted %q without a decoded object", body)
			}
			return
		}
		var mal *schemas.MalformedError
		var inv *schemas.InvalidError
		if !errors.As(err, &mal) && !errors.As(err, &inv) {
			t.Fatalf("unexpected error kind %T: %v", err, err)
		}
		if inv != nil && len(inv.Problems) == 0 {
			t.Fatal("invalid with no problems")
		}
	})
}

// bareSchema compiles the newest schema of typ for gojsonschema alone, to
// show what our checks add to it.
func bareSchema(tb testing.TB, typ string) *gojsonschema.Schema {
	tb.Helper()
	raw, _ := schemas.Schema(typ, 0)
	bare, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	return bare
}

// BenchmarkValidate measures the whole check per type (pre-scan, schema,
// domain rules) beside the bare gojsonschema validation of the same
// document, so the cost of our checks shows.
func BenchmarkValidate(b *testing.B) {
	for _, ti := range schemas.Types() {
		body := example(b, ti.Type, ti.Newest)
		bare := bareSchema(b, ti.Type)
		b.Run(ti.Type+"/corridor", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := schemas.Validate(ti.Type, 0, body); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(ti.Type+"/gojsonschema", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				res, err := bare.Validate(gojsonschema.NewBytesLoader(body))
				if err != nil || !res.Valid() {
					b.Fatal(err, res.Errors())
				}
			}
		})
	}
}

// Every field is described, and every object is closed, so a typo in a
// field name is refused instead of passing silently. (The if/then
// conditions under allOf only narrow fields declared elsewhere.)
func TestSchemasDescribeFieldsAndCloseObjects(t *testing.T) {
	eachSchemaNode(t, func(schema, path string, n map[string]any) {
		if path == "" && (n["title"] == nil || n["description"] == nil || n["$schema"] != "http://json-schema.org/draft-07/schema#") {
			t.Errorf("%s: title, description or draft-07 $schema missing", schema)
		}
		props, ok := n["properties"].(map[string]any)
		if !ok || strings.Contains(path, "/allOf") {
			return
		}
		if n["additionalProperties"] != false {
			t.Errorf("%s: object at %s is open", schema, path)
		}
		for name, p := range props {
			if d, _ := p.(map[string]any)["description"].(string); d == "" {
				t.Errorf("%s: %s/properties/%s has no description", schema, path, name)
			}
		}
	})
}

// eachSchemaNode calls visit for every object in every served schema, with
// the schema's name ("one-bill v1") and the object's path in it.
func eachSchemaNode(t *testing.T, visit func(schema, path string, node map[string]any)) {
	t.Helper()
	for _, ti := range schemas.Types() {
		for _, v := range ti.Versions {
			raw, _ := schemas.Schema(ti.Type, v)
			var doc any
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			schema := fmt.Sprintf("%s v%d", ti.Type, v)
			var walk func(node any, path string)
			walk = func(node any, path string) {
				switch n := node.(type) {
				case map[string]any:
					visit(schema, path, n)
					for k, c := range n {
						walk(c, path+"/"+k)
					}
				case []any:
					for i, c := range n {
						walk(c, path+"/"+strconv.Itoa(i))
					}
				}
			}
			walk(doc, "")
		}
	}
}

// FuzzDetect: telling a type from any bytes never panics, and a type it
// names is one the gateway serves.
func FuzzDetect(f *testing.F) {
	for _, ti := range schemas.Types() {
		f.Add(example(f, ti.Type, ti.Newest))
	}
	f.Add([]byte(`{"documentType":"nope"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		typ, err := schemas.Detect(body)
		if err == nil {
			if _, err := schemas.Newest(typ); err != nil {
				t.Fatalf("Detect named %q: %v", typ, err)
			}
		}
	})
}

// FuzzParts: checked in parts, a document gets what it gets checked whole,
// unless the parts stopped at MaxProblems, which the whole must then reach.
func FuzzParts(f *testing.F) {
	for _, ti := range schemas.Types() {
		f.Add(ti.Type, example(f, ti.Type, ti.Newest))
	}
	// Values of the wrong shape where the parts expect an object or array.
	for _, b := range []string{`{"bills":{"a":1}}`, `{"bills":[[1,2]]}`, `{"bills":[{"containerNumbers":{"x":1}}]}`, `{"bills":"x"}`} {
		f.Add("cargo-manifest", []byte(b))
	}
	types := schemas.Types()
	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		if !slices.ContainsFunc(types, func(ti schemas.TypeInfo) bool { return ti.Type == typ }) {
			typ = types[len(body)%len(types)].Type
		}
		var errs [2]error
		var invs [2]*schemas.InvalidError
		for i, parts := range []bool{false, true} {
			schemas.InParts(t, parts)
			_, errs[i] = schemas.Validate(typ, 0, body)
			errors.As(errs[i], &invs[i])
		}
		whole, parts := invs[0], invs[1]
		switch {
		case parts != nil && parts.Stopped:
			if whole == nil || whole.Total < schemas.MaxProblems {
				t.Fatalf("parts stopped at %d problems; whole: %v", parts.Total, errs[0])
			}
		case (errs[0] == nil) != (errs[1] == nil) || (whole == nil) != (parts == nil):
			t.Fatalf("whole: %v; parts: %v", errs[0], errs[1])
		case whole != nil && (whole.Total != parts.Total || !slices.Equal(whole.Problems, parts.Problems)):
			t.Fatalf("whole: %+v\nparts: %+v", whole.Problems, parts.Problems)
		}
	})
}
