package http

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"mime"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/schemas"
)

//go:embed openapi.json
var openapiDoc []byte

func (s *Server) ctx(c *fiber.Ctx, extra time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), s.cfg.RequestTimeout+extra)
}

// checkMedia refuses a body (what names it in the detail) that is not
// JSON in UTF-8 (application/json or a +json type) or that is compressed.
func checkMedia(c *fiber.Ctx, what string) error {
	if enc := strings.TrimSpace(c.Get(fiber.HeaderContentEncoding)); enc != "" && !strings.EqualFold(enc, "identity") {
		return exchange.Errorf(exchange.CodeUnsupportedMedia, "send %s uncompressed (Content-Encoding %s is not accepted)", what, enc)
	}
	mt, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		err = errors.New("JSON is UTF-8") // (RFC 8259: a body in another charset would be read wrong)
	}
	if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return exchange.Errorf(exchange.CodeUnsupportedMedia, "send %s as Content-Type: application/json (UTF-8)", what)
	}
	return nil
}

// readDocument returns a copy of the raw body after checking its media
// type and encoding: a compressed body is refused, so no Content-Encoding
// can get around the body limit. When ok is false the problem is written.
func (s *Server) readDocument(c *fiber.Ctx) (body []byte, ok bool) {
	if err := checkMedia(c, "the document"); err != nil {
		_ = s.fail(c, err)
		return nil, false
	}
	raw := c.Request().Body()
	if !s.allowed(c, s.volume, max(1, kib(len(raw))), fmt.Sprintf("slow down: a party may send %d KiB of documents per %s; this one is %d KiB",
		s.cfg.VolumeLimit, s.cfg.RateWindow, kib(len(raw)))) {
		return nil, false
	}
	// Request().Body() is the raw body (c.Body() would decompress it), and
	// it is copied: fasthttp reuses the buffer after the handler returns.
	return append([]byte{}, raw...), true
}

// version reads ?version=N; when ok is false the problem is written.
func (s *Server) version(c *fiber.Ctx) (n int, ok bool) {
	vs := c.Context().QueryArgs().PeekMulti("version")
	if len(vs) == 0 || (len(vs) == 1 && len(vs[0]) == 0) { // (?version= is the newest, as before)
		return 0, true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(string(vs[0]), "v"))
	if err != nil || n < 1 || len(vs) > 1 {
		_ = s.problem(c, fiber.StatusBadRequest, "malformed", "Bad version", "version is one positive integer, e.g. ?version=1", nil)
		return 0, false
	}
	return n, true
}

// readSubmission reads the type, ?version and body of a document; when ok
// is false the problem is written.
func (s *Server) readSubmission(c *fiber.Ctx) (sub exchange.Submission, ok bool) {
	if sub.Body, ok = s.readDocument(c); !ok {
		return sub, false
	}
	if sub.Version, ok = s.version(c); !ok {
		return sub, false
	}
	sub.Type = utils.CopyString(c.Params("type"))
	return sub, true
}

func (s *Server) submit(c *fiber.Ctx) error {
	sub, ok := s.readSubmission(c)
	if !ok {
		return nil
	}
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	sub.IdempotencyKey = utils.CopyString(c.Get("Idempotency-Key"))
	sub.Amends = utils.CopyString(c.Query("amends"))
	rcpt, created, err := s.svc.Submit(ctx, caller(c), sub)
	if err != nil {
		return s.fail(c, err)
	}
	status, outcome := fiber.StatusOK, "replayed"
	if created {
		status, outcome = fiber.StatusCreated, "created"
	}
	s.metrics.submitted.WithLabelValues(rcpt.Type, outcome).Inc()
	c.Location("/v1/documents/" + rcpt.ID)
	return c.Status(status).JSON(rcpt)
}

func (s *Server) validate(c *fiber.Ctx) error {
	sub, ok := s.readSubmission(c)
	if !ok {
		return nil
	}
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	doc, err := s.svc.Validate(ctx, sub.Type, sub.Version, sub.Body)
	if err != nil {
		return s.fail(c, err)
	}
	return c.JSON(fiber.Map{"valid": true, "type": doc.Type, "schemaVersion": doc.Version})
}

func (s *Server) document(c *fiber.Ctx) error {
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	rec, body, err := s.svc.Document(ctx, caller(c), utils.CopyString(c.Params("id")))
	if err != nil {
		return s.fail(c, err)
	}
	sum, _ := hex.DecodeString(rec.SHA256) // the service checked the bytes against it
	etag := `"` + rec.SHA256 + `"`
	c.Set(fiber.HeaderETag, etag)
	c.Set("Repr-Digest", "sha-256=:"+base64.StdEncoding.EncodeToString(sum)+":")
	c.Set("Digest", "SHA-256="+base64.StdEncoding.EncodeToString(sum))
	c.Set("Corridor-Document-Type", rec.Type)
	c.Set("Corridor-Schema-Version", strconv.Itoa(rec.SchemaVersion))
	c.Set("Corridor-Sender", rec.Sender)
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && (inm == etag || inm == "*") {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

// byParam answers a GET of one thing named by a path parameter, looked up
// for the caller.
func byParam[T any](s *Server, param string, get func(context.Context, exchange.Party, string) (T, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := s.ctx(c, 0)
		defer cancel()
		v, err := get(ctx, caller(c), utils.CopyString(c.Params(param)))
		if err != nil {
			return s.fail(c, err)
		}
		return c.JSON(v)
	}
}

// deleteByParam answers an admin DELETE of one thing named by a path parameter.
func deleteByParam(s *Server, param string, del func(context.Context, string) error) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := s.ctx(c, 0)
		defer cancel()
		if err := del(ctx, utils.CopyString(c.Params(param))); err != nil {
			return s.fail(c, err)
		}
		return c.SendStatus(fiber.StatusNoContent)
	}
}

func (s *Server) inbox(c *fiber.Ctx) error {
	limit, err1 := strconv.Atoi(c.Query("limit", "10"))
	wait, err2 := strconv.ParseFloat(c.Query("wait", "0"), 64)
	maxWait := s.cfg.MaxWait.Seconds()
	// NaN fails every comparison, so it would pass the range check below
	// (and become a wait of math.MinInt64 nanoseconds); the infinities
	// fall outside the range.
	if err1 != nil || limit < 1 || limit > 100 || err2 != nil || math.IsNaN(wait) || wait < 0 || wait > maxWait {
		return s.problem(c, fiber.StatusBadRequest, "malformed", "Bad query",
			"limit is 1 to 100 and wait 0 to "+strconv.FormatFloat(maxWait, 'f', -1, 64)+" seconds", []schemas.Problem{})
	}
	w := time.Duration(wait * float64(time.Second))
	ctx, cancel := s.ctx(c, w)
	defer cancel()
	msgs, err := s.svc.Pull(ctx, caller(c), limit, w)
	if err != nil {
		return s.fail(c, err)
	}
	s.metrics.delivered.Add(float64(len(msgs)))
	return c.JSON(fiber.Map{"messages": msgs})
}

func (s *Server) ack(c *fiber.Ctx) error {
	var req struct {
		IDs []string `json:"ids"`
	}
	const usage = `send {"ids": ["<message id>", ...]}, 1 to 1000 ids`
	if err := decode(c, &req, usage); err != nil {
		return s.fail(c, err)
	}
	if len(req.IDs) == 0 || len(req.IDs) > 1000 {
		return s.fail(c, &exchange.Error{Code: exchange.CodeMalformed, Message: usage,
			Problems: []schemas.Problem{{Pointer: "/ids", Detail: "must hold 1 to 1000 ids"}}})
	}
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	n, err := s.svc.Ack(ctx, caller(c), req.IDs)
	if err != nil {
		return s.fail(c, err)
	}
	s.metrics.acked.Add(float64(n))
	return c.JSON(fiber.Map{"acked": n})
}

// decode reads the body of a request (not a document) into v after
// checking its media type as a document's (checkMedia): see decodeBody.
func decode(c *fiber.Ctx, v any, usage string) error {
	if err := checkMedia(c, "the body"); err != nil {
		return err
	}
	return decodeBody(c.Request().Body(), v, usage)
}

// decodeBody reads a request body (not a document) into v: one JSON value
// and nothing after it, valid UTF-8, no member named twice (which of two
// would count is a parser's choice, and a proxy's may differ), no member v
// does not have (names match exactly). Else a malformed problem says
// usage, with the JSON pointer of what is wrong.
func decodeBody(body []byte, v any, usage string) error {
	err := jsonv2.Unmarshal(body, v, jsonv2.RejectUnknownMembers(true))
	if err == nil {
		return nil
	}
	p := schemas.Problem{Detail: "is not JSON of this request's shape"}
	var syn *jsontext.SyntacticError
	var sem *jsonv2.SemanticError
	switch {
	case errors.As(err, &syn):
		p.Pointer, p.Detail = string(syn.JSONPointer), syn.Err.Error()
		if len(body) == 0 {
			p.Detail = "the body is empty"
		}
	case errors.Is(err, jsonv2.ErrUnknownName) && errors.As(err, &sem):
		p.Pointer, p.Detail = string(sem.JSONPointer), "is not a member of this request (names match exactly)"
	case errors.As(err, &sem):
		p.Pointer, p.Detail = string(sem.JSONPointer), "has the wrong JSON type or format"
	}
	return &exchange.Error{Code: exchange.CodeMalformed, Message: usage, Problems: []schemas.Problem{p}}
}

// missing is the malformed problem of a member a request body must have
// (ptr: its JSON pointer), saying usage.
func missing(ptr, usage string) error {
	return &exchange.Error{Code: exchange.CodeMalformed, Message: usage, Problems: []schemas.Problem{{Pointer: ptr, Detail: "is required"}}}
}

func (s *Server) schemaList(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"types": schemas.Types()})
}

func (s *Server) schema(c *fiber.Ctx) error {
	v, err := strconv.Atoi(strings.TrimPrefix(c.Params("version"), "v"))
	if err != nil || v < 1 {
		return s.problem(c, fiber.StatusNotFound, "not-found", "Not found", "no such schema version", nil)
	}
	raw, err := schemas.Schema(c.Params("type"), v)
	if err != nil {
		return s.problem(c, fiber.StatusNotFound, "not-found", "Not found", err.Error(), nil)
	}
	c.Set(fiber.HeaderContentType, "application/schema+json")
	return c.Send(raw)
}

func (s *Server) receiptKey(c *fiber.Ctx) error {
	pub := s.svc.Signer.PublicKey()
	return c.JSON(fiber.Map{
		"algorithm": "Ed25519",
		"publicKey": base64.StdEncoding.EncodeToString(pub),
		"jwk":       fiber.Map{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(pub)},
		"signs":     "RFC 8785 canonical JSON of the receipt without its signature; signature is base64url",
	})
}

func (s *Server) createParty(c *fiber.Ctx) error {
	var p exchange.Party
	var req struct {
		ID      string          `json:"id"`
		Name    string          `json:"name"`
		Roles   []exchange.Role `json:"roles"`
		Country string          `json:"country"`
		Places  []string        `json:"places"`
	}
	if err := decode(c, &req, `send {"id", "name", "roles": [...], "country"}`); err != nil {
		return s.fail(c, err)
	}
	p = exchange.Party{ID: req.ID, Name: req.Name, Roles: req.Roles, Country: req.Country, Places: req.Places}
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	created, err := s.svc.CreateParty(ctx, p)
	if err != nil {
		return s.fail(c, err)
	}
	key, k, err := s.svc.IssueKey(ctx, created.ID)
	if err != nil {
		return s.fail(c, err)
	}
	s.log.Info("party created", "party", created.ID, "keyId", k.ID)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"id": created.ID, "key": key, "keyId": k.ID, "party": created})
}

// listParties answers GET /v1/admin/parties: a page of parties by id.
func (s *Server) listParties(c *fiber.Ctx) error {
	limit, err := queryLimit(c)
	if err != nil {
		return s.fail(c, err)
	}
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	ps, next, err := s.svc.PartyPage(ctx, utils.CopyString(c.Query("cursor")), limit)
	if err != nil {
		return s.fail(c, err)
	}
	out := fiber.Map{"parties": ps}
	if next != "" {
		out["next"] = next
	}
	return c.JSON(out)
}

func (s *Server) issueKey(c *fiber.Ctx) error {
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	key, k, err := s.svc.IssueKey(ctx, utils.CopyString(c.Params("id")))
	if err != nil {
		return s.fail(c, err)
	}
	s.log.Info("key issued", "party", k.Party, "keyId", k.ID)
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"id": k.Party, "key": key, "keyId": k.ID})
}

func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok", "version": s.cfg.Version})
}

func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 3*time.Second)
	defer cancel()
	if err := s.svc.Ready(ctx); err != nil {
		s.log.Warn("not ready", "err", err)
		return s.problem(c, fiber.StatusServiceUnavailable, "unavailable", "Not ready", "a storage backend cannot be reached", nil)
	}
	return c.JSON(fiber.Map{"status": "ready"})
}

func (s *Server) openapi(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(openapiDoc)
}

func (s *Server) index(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{
		"service": "corridor", "version": s.cfg.Version,
		"openapi": "/openapi.json", "schemas": "/v1/schemas", "health": "/healthz", "metrics": "/metrics",
		"hint": "every /v1 call takes Authorization: Bearer <API key>",
	})
}
