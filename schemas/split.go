package schemas

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/xeipuuv/gojsonschema"
)

// gojsonschema cannot stop early: given a large document it reports every
// problem, and each costs it microseconds and a few hundred bytes, so a
// hostile body within the pre-scan's limits (one problem per token) took
// 0.3 s. A large document is therefore validated in parts: each object with
// the arrays below it set aside, then each array's items, a run of them at a
// time, and validation stops once MaxProblems problems are found. The parts
// are compiled from the schema when it loads (a part is the schema node with
// the split-off properties set to true, or an array node without its items),
// so every keyword is still checked by gojsonschema, exactly once.
// TestSplitFindsWhatTheWholeFinds holds the two ways to the same problems.

// splitAbove is the token count above which a document is validated in
// parts. Below it, one gojsonschema run costs at most a few milliseconds
// even with a problem on every token, and one run is cheaper than several.
var splitAbove = 2048

// runTokens bounds the tokens of one run of array items validated at once,
// and with it the problems one gojsonschema run can find past MaxProblems.
const runTokens = 1024

// part validates one value against one node of a schema.
type part struct {
	schema *gojsonschema.Schema // the node, with what is split off it set aside
	// An object's properties that are validated on their own, by name.
	props []namedPart
	// An array's items: items splits each item further when it holds
	// arrays of its own; else run validates runs of items at once.
	items *part
	run   *gojsonschema.Schema
}

type namedPart struct {
	name string
	part *part
}

// planner compiles the parts of one schema document.
type planner struct {
	root map[string]any
}

// plan compiles the parts of the schema raw, or returns nil if nothing in
// it splits (no arrays).
func plan(raw []byte) (*part, error) {
	var root map[string]any
	if err := json.Unmarshal(raw, &root); err != nil {
		return nil, err
	}
	pl := planner{root: root}
	return pl.build(root, 0)
}

// maxPlanDepth bounds the planner on a schema whose definitions refer to
// each other in a loop; such a node is validated whole.
const maxPlanDepth = 16

// build returns the part for node, or nil when node is validated whole: it
// holds no array, or a keyword could tie a split-off property to another.
func (pl planner) build(node any, depth int) (*part, error) {
	n, err := pl.resolve(node)
	if err != nil || n == nil || depth > maxPlanDepth || !pl.hasArray(n, depth) {
		return nil, err
	}
	switch n["type"] {
	case "array":
		items, ok := n["items"].(map[string]any)
		if !ok {
			return nil, nil
		}
		shell := maps.Clone(n)
		delete(shell, "items")
		p := &part{}
		if p.schema, err = pl.compile(shell); err != nil {
			return nil, err
		}
		if p.items, err = pl.build(items, depth+1); err != nil || p.items != nil {
			return p, err
		}
		p.run, err = pl.compile(map[string]any{"type": "array", "items": items})
		return p, err
	case "object":
		props, _ := n["properties"].(map[string]any)
		if props == nil || tied(n) {
			return nil, nil
		}
		shallow := maps.Clone(n)
		kept := maps.Clone(props)
		p := &part{}
		named := conditioned(n)
		for _, name := range slices.Sorted(maps.Keys(props)) {
			if named[name] {
				continue
			}
			sub, err := pl.build(props[name], depth+1)
			if err != nil {
				return nil, err
			}
			if sub != nil {
				kept[name] = true
				p.props = append(p.props, namedPart{name, sub})
			}
		}
		if len(p.props) == 0 {
			return nil, nil
		}
		shallow["properties"] = kept
		if p.schema, err = pl.compile(shallow); err != nil {
			return nil, err
		}
		return p, nil
	}
	return nil, nil
}

// tied is whether an object node has a keyword that may apply one schema to
// several properties (dependencies, patterns): such a node is not split.
func tied(n map[string]any) bool {
	for _, k := range []string{"dependencies", "patternProperties", "propertyNames"} {
		if _, ok := n[k]; ok {
			return true
		}
	}
	return false
}

// conditioned names the properties a node's conditions and combinations
// (if/then/else, allOf, ...) say anything about: those stay in the node, so
// a condition sees them whole. Ours name only scalars (modeOfTransport,
// eventType), so every array is still split off.
func conditioned(n map[string]any) map[string]bool {
	named := map[string]bool{}
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			if ps, ok := t["properties"].(map[string]any); ok {
				for name := range ps {
					named[name] = true
				}
			}
			for _, c := range t {
				walk(c)
			}
		case []any:
			for _, c := range t {
				walk(c)
			}
		}
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf", "if", "then", "else", "not"} {
		walk(n[k])
	}
	return named
}

// resolve follows local $refs ("#/definitions/x") to the node they name.
// Draft-07 ignores a $ref's siblings, so the node is the target alone.
func (pl planner) resolve(node any) (map[string]any, error) {
	for range maxPlanDepth {
		n, ok := node.(map[string]any)
		if !ok {
			return nil, nil
		}
		ref, ok := n["$ref"].(string)
		if !ok {
			return n, nil
		}
		if !strings.HasPrefix(ref, "#/") {
			return nil, fmt.Errorf("$ref %q is not local", ref)
		}
		node = any(pl.root)
		for _, tok := range strings.Split(ref[2:], "/") {
			m, _ := node.(map[string]any)
			tok = pointerUnescaper.Replace(tok)
			if node = m[tok]; node == nil {
				return nil, fmt.Errorf("$ref %q names nothing", ref)
			}
		}
	}
	return nil, nil
}

var pointerUnescaper = strings.NewReplacer("~1", "/", "~0", "~")

// hasArray tells whether node is an array or an object with one below it.
func (pl planner) hasArray(n map[string]any, depth int) bool {
	if depth > maxPlanDepth {
		return false
	}
	switch n["type"] {
	case "array":
		return true
	case "object":
		props, _ := n["properties"].(map[string]any)
		for _, p := range props {
			if c, err := pl.resolve(p); err == nil && c != nil && pl.hasArray(c, depth+1) {
				return true
			}
		}
	}
	return false
}

// compile makes a schema of node that keeps the document's definitions and
// draft, so its $refs resolve as they did in the whole.
func (pl planner) compile(node map[string]any) (*gojsonschema.Schema, error) {
	doc := maps.Clone(node)
	doc["$schema"] = pl.root["$schema"]
	if defs, ok := pl.root["definitions"]; ok {
		doc["definitions"] = defs
	}
	return gojsonschema.NewSchema(gojsonschema.NewGoLoader(doc))
}

// splitRun is one validation in parts.
type splitRun struct {
	ctx     context.Context
	ps      *problemSet
	stopped bool // MaxProblems found: the rest is not looked at
}

// validate checks v, found at pointer at, against p and what is split off it.
func (r *splitRun) validate(p *part, v any, at string) error {
	if err := r.check(p.schema, v, at, 0); err != nil || r.stopped {
		return err
	}
	if p.props != nil { // an object's part
		obj, _ := v.(map[string]any) // nil when not an object: the schema said so
		for _, np := range p.props {
			if c, ok := obj[np.name]; ok {
				if err := r.validate(np.part, c, at+Pointer(np.name)); err != nil || r.stopped {
					return err
				}
			}
		}
		return nil
	}
	arr, ok := v.([]any) // an array's part
	if !ok {
		return nil
	}
	if p.items != nil {
		for i, item := range arr {
			if err := r.validate(p.items, item, at+"/"+strconv.Itoa(i)); err != nil || r.stopped {
				return err
			}
		}
		return nil
	}
	for start := 0; start < len(arr); {
		end, n := start+1, tokens(arr[start])
		for ; end < len(arr); end++ {
			t := tokens(arr[end])
			if n+t > runTokens {
				break
			}
			n += t
		}
		if err := r.check(p.run, arr[start:end], at, start); err != nil || r.stopped {
			return err
		}
		start = end
	}
	return nil
}

// check runs one compiled part on v and files its problems under at; a run
// of items starting at index offset has its indexes moved by offset.
func (r *splitRun) check(s *gojsonschema.Schema, v any, at string, offset int) error {
	if err := r.ctx.Err(); err != nil {
		return fmt.Errorf("schema, at %s: %w", at, err)
	}
	if err := r.ps.validate(s, v, at, offset); err != nil {
		return err
	}
	r.stopped = len(r.ps.list) >= MaxProblems
	return nil
}

// tokens counts the JSON tokens of a decoded value, as the pre-scan does:
// names, values and brackets.
func tokens(v any) int {
	switch t := v.(type) {
	case map[string]any:
		n := 2
		for _, c := range t {
			n += 1 + tokens(c)
		}
		return n
	case []any:
		n := 2
		for _, c := range t {
			n += tokens(c)
		}
		return n
	}
	return 1
}
