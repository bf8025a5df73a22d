package http

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/valyala/fasthttp"

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
	exchange.CodeMalformed:        {fiber.StatusBadRequest, "Malformed request"},
	exchange.CodeInvalid:          {fiber.StatusUnprocessableEntity, "Invalid document"},
	exchange.CodeNotFound:         {fiber.StatusNotFound, "Not found"},
	exchange.CodeConflict:         {fiber.StatusConflict, "Conflict"},
	exchange.CodeUnauthorized:     {fiber.StatusUnauthorized, "Unauthorized"},
	exchange.CodeForbidden:        {fiber.StatusForbidden, "Forbidden"},
	exchange.CodeUnavailable:      {fiber.StatusServiceUnavailable, "Service unavailable"},
	exchange.CodeUnsupportedMedia: {fiber.StatusUnsupportedMediaType, "Unsupported media type"},
}

func (s *Server) problem(c *fiber.Ctx, status int, code, title, detail string, errs []schemas.Problem) error {
	if status == fiber.StatusServiceUnavailable || status == fiber.StatusTooManyRequests {
		if c.GetRespHeader(fiber.HeaderRetryAfter) == "" {
			c.Set(fiber.HeaderRetryAfter, "5")
		}
	}
	c.Status(status)
	c.Set(fiber.HeaderContentType, "application/problem+json")
	return c.JSON(Problem{Type: problemType + code, Title: title, Status: status, Detail: detail,
		Instance: c.Path(), Errors: errs}, "application/problem+json")
}

// fail maps an error from the service to a problem; only internal errors
// are logged, and their detail is not shown.
func (s *Server) fail(c *fiber.Ctx, err error) error {
	code := exchange.ErrorCode(err)
	// A backend call cut short by the request's deadline (or by the
	// request ending) did not fail: the backend did not answer in time.
	if code == "" && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
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

// errorHandler answers Fiber's own errors (body too large, bad method...)
// as problems. Titles and details are fixed per status: a Fiber error's
// message may hold text of the request.
func (s *Server) errorHandler(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	if errors.As(err, &fe) {
		p := fixedProblem(fe.Code)
		return s.problem(c, p.Status, strings.TrimPrefix(p.Type, problemType), p.Title, p.Detail, nil)
	}
	return s.fail(c, err)
}

const problemType = "urn:corridor:problem:"

// refusals are the codes and details of HTTP-level refusals, fixed per
// status.
var refusals = map[int]struct{ code, detail string }{
	fiber.StatusBadRequest:                  {"malformed", "the request is not well-formed HTTP/1.1"},
	fiber.StatusNotFound:                    {"not-found", "no such endpoint; see /openapi.json"},
	fiber.StatusMethodNotAllowed:            {"method-not-allowed", "this endpoint does not take that method; see /openapi.json"},
	fiber.StatusRequestTimeout:              {"timeout", "the request was not received in time"},
	fiber.StatusRequestEntityTooLarge:       {"too-large", "the body is larger than the limit of this gateway"},
	fiber.StatusUnsupportedMediaType:        {"unsupported-media-type", "send the document as Content-Type: application/json"},
	fiber.StatusTooManyRequests:             {"too-many-requests", "slow down"},
	fiber.StatusRequestHeaderFieldsTooLarge: {"headers-too-large", "the request head is larger than the limit of this gateway"},
}

// fixedProblem is the problem for an HTTP-level refusal, its text fixed.
func fixedProblem(status int) Problem {
	r, ok := refusals[status]
	if !ok {
		r.code, r.detail = "http-"+strconv.Itoa(status), "the request was refused"
	}
	return Problem{Type: problemType + r.code, Title: utils.StatusMessage(status), Status: status, Detail: r.detail}
}

// parseError answers a request that fasthttp could not read (or that the
// head guard refused), before any route runs. The body is fixed: the
// error's text is never shown, as fasthttp's may quote the request, and the
// Instance is left out, as the request line may be what was malformed.
func (s *Server) parseError(fctx *fasthttp.RequestCtx, err error) {
	status := fiber.StatusBadRequest
	var he *headError
	var small *fasthttp.ErrSmallBuffer
	var nerr net.Error
	switch {
	case errors.As(err, &he) && he.tooLarge, errors.As(err, &small):
		status = fiber.StatusRequestHeaderFieldsTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status = fiber.StatusRequestEntityTooLarge
	case errors.Is(err, fasthttp.ErrTimeout), errors.As(err, &nerr) && nerr.Timeout():
		status = fiber.StatusRequestTimeout
	}
	p := fixedProblem(status)
	reason := "unparsable"
	if he != nil {
		// The guard's reasons are fixed sentences; they name the rule broken.
		p.Detail, reason = p.Detail+": "+he.reason, he.reason
	}
	body, _ := json.Marshal(p)
	fctx.Response.Reset()
	fctx.SetStatusCode(status)
	fctx.SetContentType("application/problem+json")
	fctx.SetBody(body)
	s.metrics.requests.WithLabelValues("-", "unparsed", strconv.Itoa(status)).Inc()
	s.log.Info("request refused before routing", "status", status, "reason", reason, "ip", fctx.RemoteIP().String())
}
