// Package schemas holds the corridor's document types as versioned JSON
// Schemas (draft-07, embedded), validates documents against them with
// gojsonschema behind a strict pre-scan, and adds the domain checks a schema
// cannot make. Every problem comes back with its RFC 6901 JSON pointer.
package schemas

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xeipuuv/gojsonschema"
)

//go:embed */v*.schema.json */v*.example.json
var files embed.FS

// ErrUnknownType and ErrUnknownVersion report a type or version the gateway
// does not serve.
var (
	ErrUnknownType    = errors.New("unknown document type")
	ErrUnknownVersion = errors.New("unknown schema version")
)

// Problem is one thing wrong with a document: where, and what.
type Problem struct {
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

// MaxProblems is how many problems an InvalidError lists: a client fixes
// the first ones and sends again, and a hostile body must not turn into
// megabytes of problems.
const MaxProblems = 100

// InvalidError lists the problems found in a well-formed document that
// breaks its schema or a domain rule, in document order: all of them, or
// the first MaxProblems when there are more. It maps to HTTP 422.
type InvalidError struct {
	Problems []Problem
	Total    int // problems found, listed or not ("100 of 12,345 shown")
	// Stopped says the check of a large document stopped once it had found
	// MaxProblems: Total is then a lower bound, and the problems listed are
	// the first of those found, in document order, but not always the
	// document's first MaxProblems: an object's own members are checked
	// before the arrays it holds, so a problem in a member that comes after
	// an array (a manifest's voyageNumber after its bills) can be listed
	// where the whole check would list the array's next problem.
	Stopped bool
}

func (e *InvalidError) Error() string {
	if len(e.Problems) == 1 && e.Total <= 1 {
		return fmt.Sprintf("invalid document: %s: %s", e.Problems[0].Pointer, e.Problems[0].Detail)
	}
	if e.Stopped {
		return fmt.Sprintf("invalid document: at least %d problems (the check stopped there), the first %d listed", e.Total, len(e.Problems))
	}
	if e.Total > len(e.Problems) {
		return fmt.Sprintf("invalid document: %d problems, the first %d listed", e.Total, len(e.Problems))
	}
	return fmt.Sprintf("invalid document: %d problems", len(e.Problems))
}

// Document is a validated document, decoded.
type Document struct {
	Type    string
	Version int
	Fields  map[string]any
}

type entry struct {
	typ      string
	version  int
	title    string
	raw      []byte
	example  []byte
	schema   *gojsonschema.Schema
	parts    *part // the schema in parts, for large documents (nil: no arrays)
	required []string
}

var registry = mustLoad()

var schemaName = regexp.MustCompile(`^v([1-9][0-9]*)\.schema\.json$`)

func mustLoad() map[string][]*entry {
	reg := map[string][]*entry{}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		m := schemaName.FindStringSubmatch(path.Base(p))
		if m == nil {
			return nil
		}
		e, err := load(path.Dir(p), m[1])
		if err != nil {
			return fmt.Errorf("schema %s: %w", p, err)
		}
		reg[e.typ] = append(reg[e.typ], e)
		return nil
	})
	if err != nil {
		panic(err)
	}
	for _, es := range reg {
		slices.SortFunc(es, func(a, b *entry) int { return a.version - b.version })
	}
	return reg
}

func load(typ, version string) (*entry, error) {
	raw, err := files.ReadFile(typ + "/v" + version + ".schema.json")
	if err != nil {
		return nil, err
	}
	example, err := files.ReadFile(typ + "/v" + version + ".example.json")
	if err != nil {
		return nil, fmt.Errorf("every schema ships a valid example: %w", err)
	}
	var meta struct {
		Title    string   `json:"title"`
		Required []string `json:"required"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, err
	}
	if err := localRefsOnly(raw); err != nil {
		return nil, err
	}
	compiled, err := gojsonschema.NewSchema(gojsonschema.NewBytesLoader(raw))
	if err != nil {
		return nil, err
	}
	parts, err := plan(raw)
	if err != nil {
		return nil, fmt.Errorf("in parts: %w", err)
	}
	v, _ := strconv.Atoi(version)
	return &entry{typ: typ, version: v, title: meta.Title, raw: raw, example: example, schema: compiled, parts: parts, required: meta.Required}, nil
}

// localRefsOnly refuses a schema with a $ref that leaves the file:
// gojsonschema would fetch it over the network with no timeout.
func localRefsOnly(raw []byte) error {
	var walk func(v any) error
	walk = func(v any) error {
		switch t := v.(type) {
		case map[string]any:
			for k, c := range t {
				if s, ok := c.(string); ok && k == "$ref" && !strings.HasPrefix(s, "#") {
					return fmt.Errorf("$ref %q is not local", s)
				}
				if err := walk(c); err != nil {
					return err
				}
			}
		case []any:
			for _, c := range t {
				if err := walk(c); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return err
	}
	return walk(doc)
}

// TypeInfo describes one document type the gateway serves.
type TypeInfo struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Versions []int  `json:"versions"`
	Newest   int    `json:"newest"`
}

// Types lists the served types, sorted by name.
func Types() []TypeInfo {
	var out []TypeInfo
	for typ, es := range registry {
		ti := TypeInfo{Type: typ, Title: es[len(es)-1].title, Newest: es[len(es)-1].version}
		for _, e := range es {
			ti.Versions = append(ti.Versions, e.version)
		}
		out = append(out, ti)
	}
	slices.SortFunc(out, func(a, b TypeInfo) int { return strings.Compare(a.Type, b.Type) })
	return out
}

func lookup(typ string, version int) (*entry, error) {
	es, ok := registry[typ]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, typ)
	}
	if version == 0 {
		return es[len(es)-1], nil
	}
	for _, e := range es {
		if e.version == version {
			return e, nil
		}
	}
	return nil, fmt.Errorf("%w %d of %q", ErrUnknownVersion, version, typ)
}

// Newest returns the newest version of a type.
func Newest(typ string) (int, error) {
	e, err := lookup(typ, 0)
	if err != nil {
		return 0, err
	}
	return e.version, nil
}

// Schema returns the schema document of a type and version (0: newest).
func Schema(typ string, version int) ([]byte, error) {
	e, err := lookup(typ, version)
	if err != nil {
		return nil, err
	}
	return e.raw, nil
}

// Example returns the shipped valid example of a type and version (0: newest).
func Example(typ string, version int) ([]byte, error) {
	e, err := lookup(typ, version)
	if err != nil {
		return nil, err
	}
	return e.example, nil
}

// Detect tells a document's type from its content: its documentType field,
// else the one type whose required top-level fields it alone has.
func Detect(body []byte) (string, error) {
	v, _, err := parse(context.Background(), body)
	if err != nil {
		return "", err
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return "", &MalformedError{Detail: "the document is not a JSON object"}
	}
	if t, ok := doc["documentType"].(string); ok {
		if _, known := registry[t]; !known {
			return "", fmt.Errorf("%w %q", ErrUnknownType, t)
		}
		return t, nil
	}
	var match []string
	for typ, es := range registry {
		e := es[len(es)-1]
		if !slices.ContainsFunc(e.required, func(k string) bool { _, ok := doc[k]; return !ok && k != "documentType" }) {
			match = append(match, typ)
		}
	}
	if len(match) != 1 {
		return "", fmt.Errorf("%w: cannot tell the type of the document; give its documentType or name the type", ErrUnknownType)
	}
	return match[0], nil
}

// Budget is the deadline Validate gives itself: more than ten times the
// worst body within the pre-scan's limits (about 60 ms, BenchmarkHostile),
// so it fires only on a starved machine, where giving up beats queueing
// more work.
const Budget = time.Second

// Validate checks body as a document of type typ at version (0: newest):
// first the strict pre-scan, then the schema, then the domain rules. It
// returns the decoded document, or a *MalformedError (400), an
// *InvalidError listing the problems (422), or ErrUnknownType or
// ErrUnknownVersion (404). It runs under a deadline of Budget, as
// ValidateContext does.
func Validate(typ string, version int, body []byte) (*Document, error) {
	ctx, cancel := context.WithTimeout(context.Background(), Budget)
	defer cancel()
	return ValidateContext(ctx, typ, version, body)
}

// ValidateContext is Validate that gives up with an error wrapping ctx's
// (context.DeadlineExceeded or context.Canceled) once ctx is done. It looks
// at ctx every 4,096 tokens of the pre-scan, before the schema and before
// each part of a large document (see split.go). gojsonschema takes no
// context, so an answer comes at most one part (or one small document) after
// the deadline.
func ValidateContext(ctx context.Context, typ string, version int, body []byte) (*Document, error) {
	e, err := lookup(typ, version)
	if err != nil {
		return nil, err
	}
	v, n, err := parse(ctx, body)
	if err != nil {
		return nil, err
	}
	fields, ok := v.(map[string]any)
	if !ok {
		return nil, &MalformedError{Detail: "the document must be a JSON object"}
	}
	problems, total, stopped, err := check(ctx, e, fields, n > splitAbove)
	if err != nil {
		return nil, err
	}
	if total > 0 {
		return nil, &InvalidError{Problems: problems, Total: total, Stopped: stopped}
	}
	return &Document{Type: e.typ, Version: e.version, Fields: fields}, nil
}

// check runs the schema and the rules on the decoded document and returns
// the first MaxProblems problems and how many there are; a panic in either
// fails this document, never the process. With inParts (a large document)
// the schema runs in parts and stops once MaxProblems are found (stopped):
// the rest of the document, and the rules, are then not looked at; the
// rules stop there too.
func check(ctx context.Context, e *entry, fields map[string]any, inParts bool) (problems []Problem, total int, stopped bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			problems, total, stopped, err = nil, 0, false, fmt.Errorf("validate %s v%d: validator failed: %v", e.typ, e.version, r)
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, 0, false, fmt.Errorf("validate %s v%d: before the schema: %w", e.typ, e.version, err)
	}
	var ps problemSet
	if inParts && e.parts != nil {
		r := splitRun{ctx: ctx, ps: &ps}
		if err := r.validate(e.parts, fields, ""); err != nil {
			return nil, 0, false, fmt.Errorf("validate %s v%d: %w", e.typ, e.version, err)
		}
		stopped = r.stopped
	} else if err := ps.validate(e.schema, fields, "", 0); err != nil {
		return nil, 0, false, err
	}
	if rule := rules[e.typ]; rule != nil && !stopped {
		r := &reporter{schema: ps.pointers(), ps: &ps}
		if inParts {
			r.limit = MaxProblems
		}
		rule(fields, r)
		stopped = r.stopped
	}
	problems, total = ps.first(MaxProblems)
	return problems, total, stopped, nil
}
