// Package routing reads the single window's routing rules from a file
// (YAML, so it can carry comments; JSON is YAML too). A file is checked
// against its JSON Schema (routing.schema.json) and the facts a schema
// cannot check (unique names, HS ranges), and every problem is reported
// with its line and JSON pointer; a file with any problem is refused whole.
package routing

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/xeipuuv/gojsonschema"
	"go.yaml.in/yaml/v3"

	"github.com/landsea/corridor/exchange"
)

//go:embed default.yaml
var defaultFile []byte

//go:embed routing.schema.json
var schemaFile []byte

var schema = func() *gojsonschema.Schema {
	s, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(schemaFile))
	if err != nil {
		panic("routing.schema.json: " + err.Error())
	}
	return s
}()

// DefaultFile is the corridor's rules, embedded (deploy/routing/corridor.yaml).
func DefaultFile() []byte { return defaultFile }

// Schema is the routing file's JSON Schema.
func Schema() []byte { return schemaFile }

// Default returns the embedded rules.
func Default() *exchange.Rules {
	r, err := Parse("embedded default", defaultFile)
	if err != nil {
		panic(err) // a test parses it: this cannot ship broken
	}
	return r
}

// Problem is one thing wrong in a routing file.
type Problem struct {
	Line    int    `json:"line"` // 0 when not known
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

// Error lists every problem of a routing file.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problem(s) in the routing rules", e.File, len(e.Problems))
	for _, p := range e.Problems {
		fmt.Fprintf(&b, "\n  %s:%d: %s: %s", e.File, p.Line, p.Pointer, p.Detail)
	}
	return b.String()
}

// Load reads and checks a routing file.
func Load(path string) (*exchange.Rules, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read routing rules: %w", err)
	}
	return Parse(path, data)
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// Parse checks a routing file's bytes; name is used in messages.
func Parse(name string, data []byte) (*exchange.Rules, error) {
	if len(data) > 4<<20 {
		return nil, &Error{File: name, Problems: []Problem{{Detail: "the file is larger than 4 MiB"}}}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		line := 0
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return nil, &Error{File: name, Problems: []Problem{{Line: line, Detail: strings.TrimPrefix(err.Error(), "yaml: ")}}}
	}
	lines := map[string]int{}
	value, err := convert(&root, "", lines, 0)
	if err != nil {
		return nil, &Error{File: name, Problems: []Problem{{Line: lines[""], Detail: err.Error()}}}
	}
	res, err := schema.Validate(gojsonschema.NewGoLoader(value))
	if err != nil {
		return nil, &Error{File: name, Problems: []Problem{{Detail: err.Error()}}}
	}
	var problems []Problem
	for _, re := range res.Errors() {
		ptr := pointerOf(re.Context().String())
		detail := re.Description()
		if re.Type() == "required" {
			detail = fmt.Sprintf("%v is required", re.Details()["property"])
		}
		problems = append(problems, Problem{Line: lineOf(lines, ptr), Pointer: ptr, Detail: detail})
	}
	var rules exchange.Rules
	if len(problems) == 0 {
		raw, _ := json.Marshal(value) // maps, slices and scalars: cannot fail
		if err := json.Unmarshal(raw, &rules); err != nil {
			return nil, &Error{File: name, Problems: []Problem{{Detail: err.Error()}}}
		}
		problems = check(&rules, lines)
	}
	if len(problems) > 0 {
		slices.SortStableFunc(problems, func(a, b Problem) int { return a.Line - b.Line })
		return nil, &Error{File: name, Problems: problems}
	}
	rules.Source = name
	return &rules, nil
}

// check reports what the schema cannot: a name used twice, an HS range
// whose ends differ in length or come in the wrong order.
func check(r *exchange.Rules, lines map[string]int) []Problem {
	var out []Problem
	add := func(ptr, format string, args ...any) {
		out = append(out, Problem{Line: lineOf(lines, ptr), Pointer: ptr, Detail: fmt.Sprintf(format, args...)})
	}
	seen := map[string]int{}
	for i, rule := range r.Rules {
		if j, ok := seen[rule.Name]; ok {
			add(fmt.Sprintf("/rules/%d/name", i), "the name %q is taken by rule %d: names go into receipts and must be unique", rule.Name, j)
		}
		seen[rule.Name] = i
		for k, h := range rule.Match.HS {
			lo, hi, isRange := strings.Cut(strings.ReplaceAll(h, ".", ""), "-")
			if isRange && (len(lo) != len(hi) || lo > hi) {
				add(fmt.Sprintf("/rules/%d/match/hs/%d", i, k), "a range gives two codes of one length, the lower first (e.g. 3601-3604)")
			}
		}
	}
	return out
}

// convert turns a YAML node into the value encoding/json would make,
// noting the line of each JSON pointer.
func convert(n *yaml.Node, ptr string, lines map[string]int, depth int) (any, error) {
	if depth > 32 {
		return nil, errors.New("the file nests too deep")
	}
	if _, ok := lines[ptr]; !ok {
		lines[ptr] = n.Line
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, errors.New("the file is empty")
		}
		return convert(n.Content[0], ptr, lines, depth+1)
	case yaml.AliasNode:
		return nil, fmt.Errorf("line %d: aliases are not used in routing files", n.Line)
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			child := ptr + "/" + strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1")
			v, err := convert(n.Content[i+1], child, lines, depth+1)
			if err != nil {
				return nil, err
			}
			lines[child] = n.Content[i].Line
			m[k] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			v, err := convert(c, ptr+"/"+strconv.Itoa(i), lines, depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, fmt.Errorf("line %d: %w", n.Line, err)
	}
	return v, nil
}

// pointerOf turns gojsonschema's "(root).rules.0.name" into "/rules/0/name".
func pointerOf(context string) string {
	rest := strings.TrimPrefix(context, "(root)")
	if rest == "" {
		return ""
	}
	return strings.ReplaceAll(rest, ".", "/")
}

// lineOf is the line of a pointer, or of its nearest parent that has one.
func lineOf(lines map[string]int, ptr string) int {
	for {
		if l, ok := lines[ptr]; ok {
			return l
		}
		i := strings.LastIndex(ptr, "/")
		if i < 0 {
			return 0
		}
		ptr = ptr[:i]
	}
}
