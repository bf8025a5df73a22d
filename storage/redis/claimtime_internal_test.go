package redis

import (
	"testing"
	"time"
)

// A claim's time reads in every form gateways wrote it; one that does not
// read is the Unix epoch (stale), as the claim script reads it, never the
// zero time Holder gives an indexed key.
func TestParseClaimTime(t *testing.T) {
	at := time.Date(2026, 11, 27, 15, 20, 0, 123456000, time.UTC)
	for v, want := range map[string]time.Time{
		claimTime(at):      at,
		"1795792800123":    time.UnixMilli(1795792800123),
		"1795792800123456": time.UnixMicro(1795792800123456),
		"garbage":          time.UnixMicro(0),
		"1795792800123.x":  time.UnixMicro(0),
	} {
		if got := parseClaimTime(v); !got.Equal(want) || got.IsZero() {
			t.Errorf("parseClaimTime(%q) = %v; want %v", v, got, want)
		}
	}
}
