package storagetest

import (
	"testing"

	"github.com/landsea/corridor/storage/local"
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
