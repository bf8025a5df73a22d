package schemas

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/xeipuuv/gojsonschema"
)

type problemSet struct {
	list []Problem
	seen map[Problem]bool
}

func (ps *problemSet) add(pointer, detail string) {
	p := Problem{Pointer: pointer, Detail: detail}
	if ps.seen == nil {
		ps.seen = map[Problem]bool{}
	}
	if !ps.seen[p] {
		ps.seen[p] = true
		ps.list = append(ps.list, p)
	}
}

// validate runs schema on v, the value at pointer at, and files every
// problem it finds; in a run of array items that starts at index offset,
// indexes are moved by offset (see addSchemaError). The raw loader hands
// gojsonschema the value the pre-scan built (numbers as json.Number, as its
// own decoder makes them) instead of parsing the body again.
func (ps *problemSet) validate(schema *gojsonschema.Schema, v any, at string, offset int) error {
	res, err := schema.Validate(gojsonschema.NewRawLoader(v))
	if err != nil {
		return &MalformedError{Detail: err.Error()}
	}
	for _, re := range res.Errors() {
		ps.addSchemaError(re, at, offset)
	}
	return nil
}

func (ps *problemSet) pointers() map[string]bool {
	m := make(map[string]bool, len(ps.list))
	for _, p := range ps.list {
		m[p.Pointer] = true
	}
	return m
}

// Summaries that gojsonschema adds on top of the errors that explain them.
var summaries = map[string]bool{"condition_then": true, "condition_else": true, "number_all_of": true}

// addSchemaError files a problem gojsonschema found in the value at
// pointer at; in a run of array items that starts at index offset, the
// first token of its context is moved by offset.
func (ps *problemSet) addSchemaError(re gojsonschema.ResultError, at string, offset int) {
	if summaries[re.Type()] {
		return
	}
	pointer := at + shift(contextPointer(re.Context().String("\x00")), offset)
	d := re.Details()
	detail := sentence(re.Description())
	switch re.Type() {
	case "required":
		prop := fmt.Sprint(d["property"])
		pointer += Pointer(prop)
		detail = fmt.Sprintf("%s is required here", prop)
	case "additional_property_not_allowed":
		prop := fmt.Sprint(d["property"])
		pointer += Pointer(prop)
		detail = fmt.Sprintf("%s is not a field of this document; check its spelling", prop)
	case "format":
		if fn := formatChecks[fmt.Sprint(d["format"])]; fn != nil {
			if s, ok := re.Value().(string); ok {
				if err := fn(s); err != nil {
					detail = sentence(err.Error())
				}
			}
		}
	case "enum":
		detail = fmt.Sprintf("%v is not allowed here; use one of %v", quoteValue(re.Value()), d["allowed"])
	case "const":
		detail = fmt.Sprintf("%v is not allowed here; it must be %v", quoteValue(re.Value()), d["allowed"])
	case "pattern":
		detail = fmt.Sprintf("%v does not have the expected form (%v)", quoteValue(re.Value()), d["pattern"])
	}
	ps.add(pointer, detail)
}

// contextPointer turns a gojsonschema context written with NUL between its
// tokens ("(root)\x00bills\x000") into a pointer ("/bills/0").
func contextPointer(ctx string) string {
	_, rest, ok := strings.Cut(ctx, "\x00")
	if !ok {
		return ""
	}
	if !strings.ContainsAny(rest, "~/") {
		return "/" + strings.ReplaceAll(rest, "\x00", "/")
	}
	return Pointer(strings.Split(rest, "\x00")...)
}

// shift moves the array index that starts pointer ("/3/x") by offset.
func shift(pointer string, offset int) string {
	if offset == 0 || pointer == "" {
		return pointer
	}
	tok, rest := cutToken(pointer)
	i, _ := arrayIndex(tok)
	return "/" + strconv.Itoa(i+offset) + rest
}

func quoteValue(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

func sentence(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// first returns the first n problems in document order (pointers compared
// token by token, array indexes as numbers) and how many there are. It
// keeps only n in order as it goes: a hostile document has hundreds of
// thousands of problems, and sorting them all would cost more than finding
// them.
func (ps *problemSet) first(n int) (first []Problem, total int) {
	first = make([]Problem, 0, min(n, len(ps.list)))
	for _, p := range ps.list {
		if len(first) == n && compareProblems(p, first[n-1]) >= 0 {
			continue
		}
		i, _ := slices.BinarySearchFunc(first, p, compareProblems)
		if len(first) == n {
			first = first[:n-1]
		}
		first = slices.Insert(first, i, p)
	}
	return first, len(ps.list)
}

func compareProblems(a, b Problem) int {
	if c := comparePointers(a.Pointer, b.Pointer); c != 0 {
		return c
	}
	return strings.Compare(a.Detail, b.Detail)
}

// comparePointers orders two pointers token by token, without allocating:
// it runs for every problem of a hostile document.
func comparePointers(a, b string) int {
	for a != "" && b != "" {
		var at, bt string
		at, a = cutToken(a)
		bt, b = cutToken(b)
		if at == bt {
			continue
		}
		if an, ok := arrayIndex(at); ok {
			if bn, ok := arrayIndex(bt); ok {
				return cmp.Compare(an, bn)
			}
		}
		return strings.Compare(at, bt)
	}
	return cmp.Compare(len(a), len(b))
}

// cutToken splits "/tok/rest" into "tok" and "/rest".
func cutToken(p string) (tok, rest string) {
	p = p[1:]
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i], p[i:]
	}
	return p, ""
}

func arrayIndex(tok string) (int, bool) {
	if tok == "" || len(tok) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range []byte(tok) {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
