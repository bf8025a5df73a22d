package http

import (
	"context"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/landsea/corridor/exchange"
)

func (s *Server) title(c *fiber.Ctx) error {
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	t, err := s.svc.Title(ctx, caller(c), utils.CopyString(c.Params("ref")))
	if err != nil {
		return s.fail(c, err)
	}
	return c.JSON(t)
}

// titleAction answers POST /v1/bills/{ref}/title: the holder starts an action.
func (s *Server) titleAction(c *fiber.Ctx) error {
	var req struct {
		Action string `json:"action"`
		To     string `json:"to"`
		Reason string `json:"reason"`
	}
	const usage = `send {"action": "TRANSFER|PLEDGE|RELEASE|SURRENDER_FOR_DELIVERY|SURRENDER_FOR_AMENDMENT", "to": "<party id>", "reason": "..." (optional)}`
	if err := decode(c, &req, usage); err != nil {
		return s.fail(c, err)
	} else if req.Action == "" {
		return s.fail(c, missing("/action", usage))
	}
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	t, err := s.svc.RequestTitle(ctx, caller(c), utils.CopyString(c.Params("ref")), exchange.TitleRequest{Action: req.Action, To: req.To, Reason: req.Reason})
	if err != nil {
		return s.fail(c, err)
	}
	return c.Status(fiber.StatusCreated).JSON(t)
}

// titleAnswer answers POST /v1/bills/{ref}/title/accept, /reject and
// /withdraw: a body of nothing, or a reason.
func (s *Server) titleAnswer(answer func(context.Context, exchange.Party, string, string) (exchange.Title, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req struct {
			Reason string `json:"reason"`
		}
		if len(c.Request().Body()) > 0 {
			if err := decode(c, &req, `send nothing, or {"reason": "..."}`); err != nil {
				return s.fail(c, err)
			}
		}
		ctx, cancel := s.ctx(c, 0)
		defer cancel()
		t, err := answer(ctx, caller(c), utils.CopyString(c.Params("ref")), req.Reason)
		if err != nil {
			return s.fail(c, err)
		}
		return c.Status(fiber.StatusCreated).JSON(t)
	}
}

// routingRules answers GET /v1/routes: the single window's rules in force.
func (s *Server) routingRules(c *fiber.Ctx) error {
	r, err := s.svc.RoutingRulesFor(caller(c))
	if err != nil {
		return s.fail(c, err)
	}
	return c.JSON(r)
}
