package http

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/utils"

	"github.com/landsea/corridor/exchange"
)

// Pusher is what the HTTP adapter asks of the webhook pusher.
type Pusher interface {
	// Refresh makes the pusher read the subscriptions again.
	Refresh()
	// Replay pushes again what a subscription took since a time.
	Replay(ctx context.Context, sub exchange.Subscription, since time.Time) (int, error)
}

func (s *Server) refreshPusher() {
	if s.cfg.Pusher != nil {
		s.cfg.Pusher.Refresh()
	}
}

func (s *Server) subscribe(c *fiber.Ctx) error {
	var req struct {
		URL         string   `json:"url"`
		Types       []string `json:"types"`
		Refs        []string `json:"refs"`
		Description string   `json:"description"`
	}
	const usage = `send {"url": "https://...", "types": [...] (optional), "refs": [...] (optional), "description": "..." (optional)}`
	if err := decode(c, &req, usage); err != nil {
		return s.fail(c, err)
	} else if req.URL == "" {
		return s.fail(c, missing("/url", usage))
	}
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	sub, secret, err := s.svc.Subscribe(ctx, caller(c), exchange.SubscriptionRequest{URL: req.URL, Types: req.Types, Refs: req.Refs, Description: req.Description})
	if err != nil {
		return s.fail(c, err)
	}
	s.refreshPusher()
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"subscription": sub, "secret": secret})
}

func (s *Server) subscriptionList(c *fiber.Ctx) error {
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	subs, err := s.svc.MySubscriptions(ctx, caller(c))
	if err != nil {
		return s.fail(c, err)
	}
	return c.JSON(fiber.Map{"subscriptions": subs})
}

func (s *Server) subscription(c *fiber.Ctx) error {
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	sub, err := s.svc.MySubscription(ctx, caller(c), utils.CopyString(c.Params("id")))
	if err != nil {
		return s.fail(c, err)
	}
	return c.JSON(sub.View())
}

func (s *Server) unsubscribe(c *fiber.Ctx) error {
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	if err := s.svc.Unsubscribe(ctx, caller(c), utils.CopyString(c.Params("id"))); err != nil {
		return s.fail(c, err)
	}
	s.refreshPusher()
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) rotateSecret(c *fiber.Ctx) error {
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	sub, secret, err := s.svc.RotateSecret(ctx, caller(c), utils.CopyString(c.Params("id")))
	if err != nil {
		return s.fail(c, err)
	}
	s.refreshPusher()
	return c.JSON(fiber.Map{"subscription": sub, "secret": secret, "previousSecretsSignUntil": time.Now().UTC().Add(exchange.SecretOverlap).Truncate(time.Second)})
}

func (s *Server) deliveries(c *fiber.Ctx) error {
	limit, err := queryLimit(c)
	if err == nil && limit > 1000 {
		err = malformed("limit is 1 to 1000")
	}
	if err != nil {
		return s.fail(c, err)
	}
	if limit == 0 {
		limit = 100
	}
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	as, err := s.svc.Deliveries(ctx, caller(c), utils.CopyString(c.Params("id")), limit)
	if err != nil {
		return s.fail(c, err)
	}
	return c.JSON(fiber.Map{"deliveries": as})
}

func (s *Server) replay(c *fiber.Ctx) error {
	var req struct {
		Since time.Time `json:"since"`
	}
	const usage = `send {"since": "<RFC 3339 time>"}`
	if err := decode(c, &req, usage); err != nil {
		return s.fail(c, err)
	} else if req.Since.IsZero() {
		return s.fail(c, missing("/since", usage))
	}
	ctx, cancel := s.ctx(c, 0)
	defer cancel()
	sub, err := s.svc.MySubscription(ctx, caller(c), utils.CopyString(c.Params("id")))
	if err != nil {
		return s.fail(c, err)
	}
	if s.cfg.Pusher == nil {
		return s.fail(c, exchange.Errorf(exchange.CodeNotFound, "this gateway does not push"))
	}
	n, err := s.cfg.Pusher.Replay(ctx, sub, req.Since)
	if err != nil {
		return s.fail(c, err)
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"replaying": n})
}
