package s3_test

import (
	"context"
	"errors"
	"testing"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/s3"
	"github.com/landsea/corridor/storage/storagetest"
)

func open(t *testing.T) *s3.Store {
	t.Helper()
	env := testenv.MinIO(t)
	s := s3.New(env.Endpoint, env.Bucket, env.AccessKey, env.SecretKey)
	s.Prefix = testenv.Prefix() + "/"
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	t.Run("Archive", func(t *testing.T) {
		storagetest.Archive(t, func(t *testing.T) exchange.Archive { return open(t) })
	})
	t.Run("Parties", func(t *testing.T) {
		storagetest.Parties(t, func(t *testing.T) exchange.Parties { return open(t) })
	})
}

func TestUnreachableS3IsUnavailable(t *testing.T) {
	s := s3.New("127.0.0.1:1", "b", "k", "secretsecret")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Open(ctx); !errors.Is(err, exchange.ErrUnavailable) {
		t.Fatalf("Open against a closed port = %v, want ErrUnavailable", err)
	}
}
