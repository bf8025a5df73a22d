package http

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/landsea/corridor/exchange"
)

// revisions answers GET /v1/documents/{id}/revisions.
func (s *Server) revisions(ctx context.Context, p exchange.Party, id string) (fiber.Map, error) {
	rs, err := s.svc.Revisions(ctx, p, id)
	return fiber.Map{"revisions": rs}, err
}
