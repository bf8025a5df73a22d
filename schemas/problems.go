package schemas

import (
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

func (ps *problemSet) pointers() map[string]bool {
	m := map[string]bool{}
	for _, p := range ps.list {
		m[p.Pointer] = true
	}
	return m
}

// Summaries that gojsonschema adds on top of the errors that explain them.
var summaries = map[string]bool{"condition_then": true, "condition_else": true, "number_all_of": true}

func (ps *problemSet) addSchemaError(re gojsonschema.ResultError) {
	if summaries[re.Type()] {
		return
	}
	tokens := strings.Split(re.Context().String("\x00"), "\x00")[1:] // drop "(root)"
	d := re.Details()
	detail := sentence(re.Description())
	switch re.Type() {
	case "required":
		prop := fmt.Sprint(d["property"])
		tokens = append(tokens, prop)
		detail = fmt.Sprintf("%s is required here", prop)
	case "additional_property_not_allowed":
		prop := fmt.Sprint(d["property"])
		tokens = append(tokens, prop)
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
	ps.add(Pointer(tokens...), detail)
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

// sorted returns the problems in document order: pointers compared token by
// token, array indexes as numbers.
func (ps *problemSet) sorted() []Problem {
	out := slices.Clone(ps.list)
	slices.SortStableFunc(out, func(a, b Problem) int {
		if c := comparePointers(a.Pointer, b.Pointer); c != 0 {
			return c
		}
		return strings.Compare(a.Detail, b.Detail)
	})
	return out
}

func comparePointers(a, b string) int {
	at, bt := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(at) && i < len(bt); i++ {
		if at[i] == bt[i] {
			continue
		}
		an, aerr := strconv.Atoi(at[i])
		bn, berr := strconv.Atoi(bt[i])
		if aerr == nil && berr == nil {
			return an - bn
		}
		return strings.Compare(at[i], bt[i])
	}
	return len(at) - len(bt)
}
