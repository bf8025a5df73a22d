package http

import (
	"context"
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/schemas"
)

// Problem is an RFC 9457 problem detail.
type Problem struct {
	Type     string            `json:"type"`
	Title    string            `json:"title"`
	Status   int               `json:"status"`
	Detail   string            `json:"detail,omitempty"`
	Instance string            `json:"instance,omitempty"`
	Errors   []schemas.Problem `json:"errors,omitempty"`
}

// The one table from domain error codes to HTTP.
var statuses = map[exchange.Code]struct {
	status int
	title  string
}{
	exchange.CodeMalformed:    {fiber.StatusBadRequest, "Malformed document"},
	exchange.CodeInvalid:      {fiber.StatusUnprocessableEntity, "Invalid document"},
	exchange.CodeNotFound:     {fiber.StatusNotFound, "Not found"},
	exchange.CodeConflict:     {fiber.StatusConflict, "Conflict"},
	exchange.CodeUnauthorized: {fiber.StatusUnauthorized, "Unauthorized"},
	exchange.CodeForbidden:    {fiber.StatusForbidden, "Forbidden"},
	exchange.CodeUnavailable:  {fiber.StatusServiceUnavailable, "Service unavailable"},
}

func (s *Server) problem(c *fiber.Ctx, status int, code, title, detail string, errs []schemas.Problem) error {
	if status == fiber.StatusServiceUnavailable || status == fiber.StatusTooManyRequests {
		if c.GetRespHeader(fiber.HeaderRetryAfter) == "" {
			c.Set(fiber.HeaderRetryAfter, "5")
		}
	}
	c.Status(status)
	c.Set(fiber.HeaderContentType, "application/problem+json")
	return c.JSON(Problem{Type: "urn:corridor:problem:" + code, Title: title, Status: status, Detail: detail,
		Instance: c.Path(), Errors: errs}, "application/problem+json")
}

// fail maps an error from the service to a problem; only internal errors
// are logged, and their detail is not shown.
func (s *Server) fail(c *fiber.Ctx, err error) error {
	code := exchange.ErrorCode(err)
	if errors.Is(err, context.DeadlineExceeded) {
		code = exchange.CodeUnavailable
	}
	st, ok := statuses[code]
	if !ok {
		rid := c.GetRespHeader(fiber.HeaderXRequestID)
		s.log.Error("internal error", "path", c.Path(), "request_id", rid, "err", err)
		return s.problem(c, fiber.StatusInternalServerError, "internal", "Internal error",
			"the gateway failed on this request (request id "+rid+"); it may be retried", nil)
	}
	var e *exchange.Error
	detail := ""
	var problems []schemas.Problem
	if errors.As(err, &e) {
		detail, problems = e.Message, e.Problems
	} else if code == exchange.CodeUnavailable {
		s.log.Warn("backend unavailable", "path", c.Path(), "err", err)
		detail = "a storage backend cannot be reached; nothing was half-written, retry later"
	} else {
		detail = strings.TrimPrefix(err.Error(), "exchange: ")
	}
	return s.problem(c, st.status, string(code), st.title, detail, problems)
}

// errorHandler answers Fiber's own errors (body too large, bad method...) as problems.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code := map[int]string{400: "malformed", 404: "not-found", 405: "method-not-allowed", 413: "too-large",
			415: "unsupported-media-type", 429: "too-many-requests", 408: "timeout", 431: "headers-too-large"}[fe.Code]
		if code == "" {
			code = "http-" + strings.ToLower(strings.ReplaceAll(fe.Message, " ", "-"))
		}
		detail := fe.Message
		if fe.Code == fiber.StatusRequestEntityTooLarge {
			detail = "the body is larger than the limit of this gateway"
		}
		return s.problem(c, fe.Code, code, fe.Message, detail, nil)
	}
	return s.fail(c, err)
}
