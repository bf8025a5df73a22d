package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits bound what the pre-scan lets through to the schema validator.
// gojsonschema panics or burns CPU on some inputs (see docs/pitfalls.md), so
// nothing reaches it that is not one small, well-formed JSON value.
const (
	MaxDepth        = 32  // nesting of objects and arrays
	MaxNumberLength = 40  // characters in one number literal
	MaxExponent     = 308 // |decimal exponent| after normalisation
	MaxStringLength = 64 << 10
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
// value, no duplicate keys, bounded depth and sane numbers. It returns a
// *MalformedError for anything it refuses.
func Prescan(body []byte) error {
	_, err := parse(body)
	return err
}

// parse is Prescan that also returns the value it read (objects as
// map[string]any, numbers as json.Number), so the body is decoded once.
func parse(body []byte) (any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &MalformedError{Detail: "the body is empty; send one JSON document"}
	}
	if !utf8.Valid(body) {
		return nil, &MalformedError{Detail: "the body is not valid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	s := scanner{dec: dec}
	v, err := s.value(nil, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &MalformedError{Detail: "the body holds data after the JSON document; send exactly one value"}
	}
	return v, nil
}

type scanner struct{ dec *json.Decoder }

func (s *scanner) value(path []string, depth int) (any, error) {
	tok, err := s.dec.Token()
	if err != nil {
		return nil, syntaxError(err)
	}
	return s.token(tok, path, depth)
}

func (s *scanner) token(tok json.Token, path []string, depth int) (any, error) {
	switch t := tok.(type) {
	case json.Delim:
		if depth >= MaxDepth {
			return nil, &MalformedError{Pointer: Pointer(path...), Detail: fmt.Sprintf("nesting deeper than %d levels", MaxDepth)}
		}
		if t == '{' {
			return s.object(path, depth+1)
		}
		if t == '[' {
			return s.array(path, depth+1)
		}
		return nil, &MalformedError{Pointer: Pointer(path...), Detail: "unexpected " + t.String()}
	case json.Number:
		return t, checkNumber(string(t), path)
	case string:
		if len(t) > MaxStringLength {
			return nil, &MalformedError{Pointer: Pointer(path...), Detail: fmt.Sprintf("string longer than %d bytes", MaxStringLength)}
		}
	}
	return tok, nil
}

func (s *scanner) object(path []string, depth int) (any, error) {
	obj := map[string]any{}
	for {
		tok, err := s.dec.Token()
		if err != nil {
			return nil, syntaxError(err)
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return obj, nil
		}
		key, ok := tok.(string)
		if !ok {
			return nil, &MalformedError{Pointer: Pointer(path...), Detail: "object key is not a string"}
		}
		child := append(path[:len(path):len(path)], key)
		if _, dup := obj[key]; dup {
			return nil, &MalformedError{Pointer: Pointer(child...), Detail: fmt.Sprintf("the key %q appears twice in the same object", key)}
		}
		v, err := s.value(child, depth)
		if err != nil {
			return nil, err
		}
		obj[key] = v
	}
}

func (s *scanner) array(path []string, depth int) (any, error) {
	arr := []any{}
	for i := 0; ; i++ {
		tok, err := s.dec.Token()
		if err != nil {
			return nil, syntaxError(err)
		}
		if d, ok := tok.(json.Delim); ok && d == ']' {
			return arr, nil
		}
		v, err := s.token(tok, append(path[:len(path):len(path)], strconv.Itoa(i)), depth)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
	}
}

func checkNumber(lit string, path []string) error {
	bad := func(why string) error {
		return &MalformedError{Pointer: Pointer(path...), Detail: fmt.Sprintf("the number %.20q %s", lit, why)}
	}
	if len(lit) > MaxNumberLength {
		return bad(fmt.Sprintf("is longer than %d characters", MaxNumberLength))
	}
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		exp, err := strconv.Atoi(strings.TrimPrefix(lit[i+1:], "+"))
		if err != nil || exp > MaxExponent || exp < -MaxExponent {
			return bad("has an exponent out of range")
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return bad("is not a number")
	}
	if math.IsInf(f, 0) || err != nil {
		return bad("is out of range")
	}
	return nil
}

func syntaxError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &MalformedError{Detail: fmt.Sprintf("not valid JSON at byte %d: %s", se.Offset, se.Error())}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &MalformedError{Detail: "the JSON document ends too early"}
	}
	return &MalformedError{Detail: "not valid JSON: " + err.Error()}
}

// Pointer builds an RFC 6901 JSON pointer from reference tokens.
func Pointer(tokens ...string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}
