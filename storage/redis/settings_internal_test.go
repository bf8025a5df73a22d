package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/internal/testenv"
)

// recordBetween is a hook that, after the first pipeline of GETs (the
// first round of check), records a dedupe window as a gateway starting
// at the same time would.
type recordBetween struct {
	rc   *goredis.Client
	key  string
	done bool
}

func (h *recordBetween) DialHook(next goredis.DialHook) goredis.DialHook          { return next }
func (h *recordBetween) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook { return next }
func (h *recordBetween) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		err := next(ctx, cmds)
		if !h.done && len(cmds) > 0 && cmds[0].Name() == "get" {
			h.done = true
			if err := h.rc.Set(ctx, h.key, 600, 0).Err(); err != nil {
				return err
			}
		}
		return err
	}
}

// A gateway not given the window, starting while another records its own
// (between the two rounds of check), takes that one instead of refusing.
func TestSettingRecordedBetweenTheRounds(t *testing.T) {
	ctx := context.Background()
	opts, err := goredis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(opts)
	defer rc.Close()
	s := New(testenv.RedisURL(t))
	s.Prefix, s.AdoptWindow, s.AdoptRecordTTL = testenv.Prefix(), true, true
	if s.cmd, err = s.client(0, 0); err != nil {
		t.Fatal(err)
	}
	defer s.cmd.Close()
	s.cmd.AddHook(&recordBetween{rc: rc, key: s.windowKey()})
	if err := s.check(ctx); err != nil {
		t.Fatalf("check with a window recorded between its rounds: %v", err)
	}
	if s.DedupeWindow != 10*time.Minute {
		t.Fatalf("the store keeps a window of %s; want the 10m recorded meanwhile", s.DedupeWindow)
	}
}
