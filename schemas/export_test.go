package schemas

import (
	"context"
	"math"
	"testing"
)

// Tokens counts the tokens of body as the pre-scan does (0 if it refuses it).
func Tokens(body []byte) int {
	_, n, _ := parse(context.Background(), body)
	return n
}

// InParts makes Validate check every document in parts (true) or every one
// whole (false) until the test ends.
func InParts(t testing.TB, parts bool) {
	old := splitAbove
	splitAbove = math.MaxInt
	if parts {
		splitAbove = 0
	}
	t.Cleanup(func() { splitAbove = old })
}
