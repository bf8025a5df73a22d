package exchange

import (
	"errors"
	"fmt"

	"github.com/landsea/corridor/schemas"
)

// Code classifies an Error; adapters map codes to protocol statuses in one place.
type Code string

// The error codes.
const (
	CodeMalformed    Code = "malformed"    // not one well-formed JSON document
	CodeInvalid      Code = "invalid"      // a schema or domain rule broken
	CodeNotFound     Code = "not-found"    // no such thing, or not the caller's to see
	CodeConflict     Code = "conflict"     // a reference or lifecycle step that is not allowed
	CodeUnauthorized Code = "unauthorized" // no key, or a wrong one
	CodeForbidden    Code = "forbidden"    // a right key without the right
	CodeUnavailable  Code = "unavailable"  // a backend is down
	// CodeUnsupportedMedia refuses a body by its media type or encoding.
	CodeUnsupportedMedia Code = "unsupported-media-type"
)

// Error is a domain error with a code, a sentence for the caller and, for
// document problems, every problem with its JSON pointer.
type Error struct {
	Code     Code
	Message  string
	Problems []schemas.Problem
	Err      error // the cause, for logs
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err: an *Error's own, CodeNotFound or
// CodeUnavailable for the port sentinels, "" for anything else (internal).
func ErrorCode(err error) Code {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e.Code
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	case errors.Is(err, ErrUnavailable):
		return CodeUnavailable
	}
	return ""
}

// validationError turns what schemas.Validate returned into an *Error.
func validationError(err error) error {
	var mal *schemas.MalformedError
	var inv *schemas.InvalidError
	switch {
	case errors.As(err, &mal):
		e := &Error{Code: CodeMalformed, Message: mal.Detail}
		if mal.Pointer != "" {
			e.Problems = []schemas.Problem{{Pointer: mal.Pointer, Detail: mal.Detail}}
		}
		return e
	case errors.As(err, &inv):
		msg := fmt.Sprintf("the document breaks %d rule(s); see errors", len(inv.Problems))
		switch {
		case inv.Stopped:
			msg = fmt.Sprintf("the document breaks at least %d rules (the check stopped there); errors lists the first %d", inv.Total, len(inv.Problems))
		case inv.Total > len(inv.Problems):
			msg = fmt.Sprintf("the document breaks %d rules; errors lists the first %d", inv.Total, len(inv.Problems))
		}
		return &Error{Code: CodeInvalid, Message: msg, Problems: inv.Problems}
	case errors.Is(err, schemas.ErrUnknownType), errors.Is(err, schemas.ErrUnknownVersion):
		return &Error{Code: CodeNotFound, Message: err.Error()}
	}
	return fmt.Errorf("validate: %w", err)
}
