package http

import (
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/landsea/corridor/exchange"
)

// malformed is a refusal of a query or body the caller can fix.
func malformed(format string, args ...any) error {
	return exchange.Errorf(exchange.CodeMalformed, format, args...)
}

// queryLimit reads ?limit=: absent is 0 (the service's default); given,
// it is a whole number of at least 1 (the service bounds it from above).
func queryLimit(c *fiber.Ctx) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, malformed("limit is a whole number of at least 1")
	}
	return n, nil
}

// queryDesc reads an order parameter: asc (oldest first, the default) or desc.
func queryDesc(c *fiber.Ctx, name string) (bool, error) {
	switch c.Query(name, "asc") {
	case "asc":
		return false, nil
	case "desc":
		return true, nil
	}
	return false, malformed("%s is asc (oldest first) or desc (newest first)", name)
}

// queryTime reads an optional RFC 3339 query parameter.
func queryTime(c *fiber.Ctx, name string) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, malformed("%s must be an RFC 3339 date-time, e.g. 2026-11-05T00:00:00Z", name)
	}
	return t, nil
}

// shipment answers GET /v1/shipments/{ref}: one shipment, or 300 with the
// shipments to choose from when the ref (a container) belongs to several.
func (s *Server) shipment(c *fiber.Ctx) error {
	q := exchange.EventQuery{Cursor: utils.CopyString(c.Query("cursor"))}
	var err error
	if q.Limit, err = queryLimit(c); err != nil {
		return s.fail(c, err)
	}
	if q.Desc, err = queryDesc(c, "order"); err != nil {
		return s.fail(c, err)
	}
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	ref := utils.CopyString(c.Params("ref"))
	v, err := s.svc.Shipment(ctx, caller(c), ref, q)
	if err != nil {
		return s.fail(c, err)
	}
	if v.Shipment == nil {
		return c.Status(fiber.StatusMultipleChoices).JSON(fiber.Map{"ref": exchange.NormalizeRef(ref), "shipments": v.Choices})
	}
	return c.JSON(v.Shipment)
}

// shipments answers GET /v1/shipments.
func (s *Server) shipments(c *fiber.Ctx) error {
	q := exchange.ShipmentQuery{Status: strings.ToUpper(c.Query("status")), Mode: strings.ToUpper(c.Query("mode")),
		Location: strings.ToUpper(c.Query("location")), Cursor: utils.CopyString(c.Query("cursor"))}
	var err error
	q.Limit, err = queryLimit(c)
	if err == nil {
		q.From, err = queryTime(c, "from")
	}
	if err == nil {
		q.To, err = queryTime(c, "to")
	}
	if err != nil {
		return s.fail(c, err)
	}
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	list, err := s.svc.Shipments(ctx, caller(c), q)
	if err != nil {
		return s.fail(c, err)
	}
	return c.JSON(list)
}

func (s *Server) grant(c *fiber.Ctx) error {
	var req struct {
		Party   string     `json:"party"`
		Until   *time.Time `json:"until"`
		Publish bool       `json:"publish"`
	}
	const usage = `send {"party": "<party id>", "until": "<RFC 3339 time>" (optional), "publish": true|false (optional)}`
	if err := decode(c, &req, usage); err != nil {
		return s.fail(c, err)
	} else if req.Party == "" {
		return s.fail(c, missing("/party", usage))
	}
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	g, err := s.svc.GrantAccess(ctx, caller(c), utils.CopyString(c.Params("ref")), exchange.GrantRequest{Party: req.Party, Until: req.Until, Publish: req.Publish})
	if err != nil {
		return s.fail(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(g)
}

func (s *Server) grants(c *fiber.Ctx) error {
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	gs, err := s.svc.Grants(ctx, caller(c), utils.CopyString(c.Params("ref")))
	if err != nil {
		return s.fail(c, err)
	}
	return c.JSON(fiber.Map{"grants": gs})
}

func (s *Server) grantOf(c *fiber.Ctx) error {
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	g, err := s.svc.GrantOf(ctx, caller(c), utils.CopyString(c.Params("ref")), utils.CopyString(c.Params("party")))
	if err != nil {
		return s.fail(c, err)
	}
	return c.JSON(g)
}

func (s *Server) revokeGrant(c *fiber.Ctx) error {
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	if err := s.svc.RevokeGrant(ctx, caller(c), utils.CopyString(c.Params("ref")), utils.CopyString(c.Params("party"))); err != nil {
		return s.fail(c, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// events answers GET /v1/events, DCSA style.
func (s *Server) events(c *fiber.Ctx) error {
	q := exchange.EventFilter{TransportDocumentReference: utils.CopyString(c.Query("transportDocumentReference")),
		EquipmentReference: utils.CopyString(c.Query("equipmentReference")), EventType: strings.ToUpper(c.Query("eventType")),
		EventTypeCode: strings.ToUpper(c.Query("eventTypeCode")), UNLocationCode: strings.ToUpper(c.Query("UNLocationCode")),
		Cursor: utils.CopyString(c.Query("cursor"))}
	var err error
	q.Limit, err = queryLimit(c)
	if err == nil {
		q.Min, err = queryTime(c, "eventDateTimeMin")
	}
	if err == nil {
		q.Max, err = queryTime(c, "eventDateTimeMax")
	}
	if err == nil {
		q.Desc, err = queryDesc(c, "sort") // DCSA's name for it
	}
	if err != nil {
		return s.fail(c, err)
	}
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	list, err := s.svc.Events(ctx, caller(c), q)
	if err != nil {
		return s.fail(c, err)
	}
	return c.JSON(list)
}
