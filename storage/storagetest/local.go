package storagetest

import (
	"context"
	"testing"

	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/local"
	"github.com/landsea/corridor/storage/s3"
)

// Local opens an embedded store in a fresh temporary directory and closes
// it when the test ends. Each setup runs before Open, for the fields Open
// reads (VisibilityTimeout, NoSync).
func Local(t testing.TB, setup ...func(*local.Store)) *local.Store {
	t.Helper()
	s := local.New(t.TempDir())
	for _, f := range setup {
		f(s)
	}
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// MinIO opens a store on the test MinIO under a fresh prefix (skipped, or
// failed under `make test`, without it).
func MinIO(t testing.TB) *s3.Store {
	t.Helper()
	env := testenv.MinIO(t)
	s := s3.New(env.Endpoint, env.Bucket, env.AccessKey, env.SecretKey)
	s.Prefix = testenv.Prefix() + "/"
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}
