package schemas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// Limits bound what the pre-scan lets through to the schema validator.
// gojsonschema panics or burns CPU on some inputs (see docs/pitfalls.md), so
// nothing reaches it that is not one small, well-formed JSON value.
//
// MaxMembers, MaxItems and MaxTokens bound the validator's work: it is
// linear in the tokens it is given, and a large document is checked in parts
// that stop at MaxProblems (split.go), since every problem gojsonschema
// reports costs it microseconds and kilobytes and a hostile body can hold
// about one problem per token. TestSchemasStayWithinLimits keeps the schemas
// inside them.
const (
	MaxDepth        = 32  // nesting of objects and arrays
	MaxNumberLength = 40  // characters in one number literal
	MaxExponent     = 308 // |decimal exponent| after normalisation
	MaxStringLength = 64 << 10

	// MaxMembers is three times the largest object a schema declares (21
	// properties): every object is closed, so a member beyond those is
	// already wrong.
	MaxMembers = 64
	// MaxItems is five times the largest maxItems a schema declares (2,000
	// bills in a cargo manifest).
	MaxItems = 10_000
	// MaxTokens counts names, values and brackets. The largest document we
	// expect, a manifest of 2,000 bills and 24,000 containers (the largest
	// ships'), has about 46,000; the example one-bill has 172.
	MaxTokens = 100_000
)

// MalformedError reports a body that is not one well-formed JSON value we
// accept. It maps to HTTP 400.
type MalformedError struct {
	Pointer string // where the problem is, when it is known ("" for the whole body)
	Detail  string
}

func (e *MalformedError) Error() string {
	if e.Pointer == "" {
		return "malformed document: " + e.Detail
	}
	return fmt.Sprintf("malformed document at %s: %s", e.Pointer, e.Detail)
}

// Prescan checks the raw bytes strictly: valid UTF-8, exactly one JSON
// value, no duplicate keys, bounded depth, members, items and tokens, and
// sane numbers. It returns a *MalformedError for anything it refuses.
func Prescan(body []byte) error {
	_, _, err := parse(context.Background(), body)
	return err
}

// parse is Prescan that also returns the value it read (objects as
// map[string]any, numbers as json.Number), so the body is decoded once,
// and how many tokens it holds. It gives up with ctx's error once ctx is
// done.
func parse(ctx context.Context, body []byte) (any, int, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, 0, &MalformedError{Detail: "the body is empty; send one JSON document"}
	}
	// jsontext refuses invalid UTF-8 too, but this says it plainly.
	if !utf8.Valid(body) {
		return nil, 0, &MalformedError{Detail: "the body is not valid UTF-8"}
	}
	// A *bytes.Buffer lets the decoder read body in place, without a copy.
	s := scanner{ctx: ctx, dec: jsontext.NewDecoder(bytes.NewBuffer(body))}
	v, err := s.value(0)
	if err != nil {
		return nil, 0, err
	}
	if _, err := s.dec.ReadToken(); err != io.EOF {
		return nil, 0, &MalformedError{Detail: "the body holds data after the JSON document; send exactly one value"}
	}
	return v, s.tokens, nil
}

// scanner builds the value as jsontext reads it. jsontext itself refuses
// duplicate names, invalid UTF-8, bad syntax and brackets out of place; the
// scanner adds our limits.
type scanner struct {
	ctx    context.Context
	dec    *jsontext.Decoder
	tokens int
}

// ctxEvery is how many tokens pass between two looks at the context: a
// look costs more than a token, and 4,096 tokens take under a millisecond.
const ctxEvery = 4096

func (s *scanner) next() (jsontext.Token, error) {
	tok, err := s.dec.ReadToken()
	if err != nil {
		return tok, s.syntaxError(err)
	}
	s.tokens++
	if s.tokens > MaxTokens {
		return tok, s.refuse(s.here(), "the document has more than %d tokens (names, values and brackets); the limit is %d", MaxTokens, MaxTokens)
	}
	if s.tokens%ctxEvery == 0 {
		if err := s.ctx.Err(); err != nil {
			return tok, fmt.Errorf("pre-scan: %w", err)
		}
	}
	return tok, nil
}

func (s *scanner) value(depth int) (any, error) {
	tok, err := s.next()
	if err != nil {
		return nil, err
	}
	return s.token(tok, depth)
}

// token turns tok into its value, reading the rest of it if it opens an
// object or array. jsontext never hands a closing bracket here.
func (s *scanner) token(tok jsontext.Token, depth int) (any, error) {
	switch tok.Kind() {
	case '{', '[':
		if depth >= MaxDepth {
			return nil, s.refuse(s.here(), "nesting deeper than %d levels", MaxDepth)
		}
		if tok.Kind() == '{' {
			return s.object(depth + 1)
		}
		return s.array(depth + 1)
	case '"':
		str := tok.String()
		if len(str) > MaxStringLength {
			return nil, s.refuse(s.here(), "string longer than %d bytes", MaxStringLength)
		}
		return str, nil
	case '0':
		lit := tok.String()
		if why := numberProblem(lit); why != "" {
			return nil, s.refuse(s.here(), "the number %.20q %s", lit, why)
		}
		return json.Number(lit), nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	}
	return nil, nil
}

func (s *scanner) object(depth int) (any, error) {
	obj := map[string]any{}
	for {
		tok, err := s.next()
		if err != nil {
			return nil, err
		}
		if tok.Kind() == '}' {
			return obj, nil
		}
		if len(obj) == MaxMembers {
			return nil, s.refuse(s.parent(), "an object has more than %d members; the limit is %d", MaxMembers, MaxMembers)
		}
		key := tok.String()
		if len(key) > MaxStringLength {
			return nil, s.refuse(s.parent(), "member name longer than %d bytes", MaxStringLength)
		}
		v, err := s.value(depth)
		if err != nil {
			return nil, err
		}
		obj[key] = v
	}
}

func (s *scanner) array(depth int) (any, error) {
	arr := []any{}
	for {
		tok, err := s.next()
		if err != nil {
			return nil, err
		}
		if tok.Kind() == ']' {
			return arr, nil
		}
		if len(arr) == MaxItems {
			return nil, s.refuse(s.parent(), "an array has more than %d items; the limit is %d", MaxItems, MaxItems)
		}
		v, err := s.token(tok, depth)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
	}
}

// here is the pointer to the value or name just read; it is built only
// when something is refused, so the happy path never tracks a path.
func (s *scanner) here() string { return string(s.dec.StackPointer()) }

// parent is the pointer to the object or array that holds what was just
// read: the object with too many members, or a name too long to echo back.
func (s *scanner) parent() string { return string(s.dec.StackPointer().Parent()) }

func (s *scanner) refuse(pointer, format string, args ...any) error {
	return &MalformedError{Pointer: pointer, Detail: fmt.Sprintf(format, args...)}
}

func (s *scanner) syntaxError(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &MalformedError{Detail: "the JSON document ends too early"}
	}
	var se *jsontext.SyntacticError
	if !errors.As(err, &se) {
		return &MalformedError{Detail: "not valid JSON: " + err.Error()}
	}
	if se.Err == jsontext.ErrDuplicateName {
		return &MalformedError{Pointer: string(se.JSONPointer), Detail: fmt.Sprintf("the key %q appears twice in the same object", se.JSONPointer.LastToken())}
	}
	detail := "not valid JSON"
	if se.Err != nil {
		detail += ": " + se.Err.Error()
	}
	return &MalformedError{Pointer: string(se.JSONPointer), Detail: fmt.Sprintf("%s (at byte %d)", detail, se.ByteOffset)}
}

// numberProblem says what is wrong with a number literal jsontext accepted,
// or "": gojsonschema panics on huge exponents, and a float out of range
// would pass every range check.
func numberProblem(lit string) string {
	if len(lit) > MaxNumberLength {
		return fmt.Sprintf("is longer than %d characters", MaxNumberLength)
	}
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		exp, err := strconv.Atoi(strings.TrimPrefix(lit[i+1:], "+"))
		if err != nil || exp > MaxExponent || exp < -MaxExponent {
			return "has an exponent out of range"
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return "is not a number"
	}
	if math.IsInf(f, 0) || err != nil {
		return "is out of range"
	}
	return ""
}

// Pointer builds an RFC 6901 JSON pointer from reference tokens.
func Pointer(tokens ...string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		if strings.ContainsAny(t, "~/") {
			t = pointerEscaper.Replace(t)
		}
		b.WriteString(t)
	}
	return b.String()
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")
