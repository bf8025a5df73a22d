package redis_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/redis"
)

// With RecordTTL a record stays in Redis until its document's receipt
// plus the TTL, and one received longer ago is not written (reindex of an
// older archive): Doc does not find it, Page lists it with a zero record
// (the service reads it from the archive), and its list entries and
// natural key stay.
func TestRecordTTL(t *testing.T) {
	for name, s := range map[string]func() *redis.Store{
		"Standalone": func() *redis.Store { return redis.New(testenv.RedisURL(t)) },
		"Cluster": func() *redis.Store {
			s := redis.New("")
			s.Cluster = testenv.RedisCluster(t)
			return s
		},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			st := s()
			st.RecordTTL = 2 * st.DedupeWindow
			st = openOn(t, st, time.Minute)
			list := "ship:" + st.Prefix + ":docs"
			now := time.Now().UTC().Truncate(time.Microsecond)
			record := func(ago time.Duration) exchange.Record {
				id := exchange.DocumentID("sender-a", "", []byte(ago.String()))
				return exchange.Record{Receipt: exchange.Receipt{ID: id, Type: "tracking-event", SchemaVersion: 1, Sender: "sender-a",
					SHA256: fmt.Sprintf("%064x", ago), ReceivedAt: now.Add(-ago), Signature: "sig"}, Keys: []string{"event:" + id}}
			}
			recent, old := record(st.RecordTTL/2), record(st.RecordTTL+time.Minute)
			for _, r := range []exchange.Record{recent, old} { // as a gateway without the TTL left them
				if err := st.Cmd().Set(ctx, st.DocKey(r.ID), "{}", 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			for _, r := range []exchange.Record{recent, old} {
				if err := st.Add(ctx, r, []exchange.Entry{{List: list, Pos: exchange.Position(r.ReceivedAt, r.ID)}}); err != nil {
					t.Fatal(err)
				}
			}
			if got, err := st.Doc(ctx, recent.ID); err != nil || got.ID != recent.ID {
				t.Fatalf("Doc of the recent record = %s, %v", got.ID, err)
			}
			want := recent.ReceivedAt.Add(st.RecordTTL).UnixMilli()
			if at, err := st.Cmd().PExpireTime(ctx, st.DocKey(recent.ID)).Result(); err != nil || at.Milliseconds() != want {
				t.Fatalf("the recent record expires at %d ms (%v), want %d (received + TTL)", at.Milliseconds(), err, want)
			}
			if _, err := st.Doc(ctx, old.ID); !errors.Is(err, exchange.ErrNotFound) {
				t.Fatalf("Doc of a record past its TTL: %v; want ErrNotFound", err)
			}
			if n, err := st.Cmd().Exists(ctx, st.DocKey(old.ID)).Result(); err != nil || n != 0 {
				t.Fatalf("a record past its TTL is in Redis (%d, %v)", n, err)
			}
			items, err := st.Page(ctx, list, "", 10, false)
			if err != nil || len(items) != 2 || exchange.PositionID(items[0].Pos) != old.ID || items[0].Record.ID != "" ||
				items[1].Record.ID != recent.ID {
				t.Fatalf("Page = %+v, %v; want the old entry with a zero record, then the recent one", items, err)
			}
			for _, r := range []exchange.Record{recent, old} {
				if id, err := st.Lookup(ctx, r.Keys[0]); err != nil || id != r.ID {
					t.Fatalf("Lookup(%s) = %s, %v; want %s", r.Keys[0], id, err, r.ID)
				}
			}
		})
	}
}

// A record must stay in Redis at least as long as its messages are
// remembered: a retry within the window is answered from it.
func TestOpenRefusesARecordTTLBelowTheWindow(t *testing.T) {
	s := redis.New(testenv.RedisURL(t))
	s.Prefix = testenv.Prefix()
	s.RecordTTL = s.DedupeWindow - time.Second
	mustRefuse(t, s, "RecordTTL", "Open with RecordTTL %s and a %s window", s.RecordTTL, s.DedupeWindow)
	s.RecordTTL = s.DedupeWindow
	if err := s.Open(context.Background()); err != nil {
		t.Fatalf("Open with RecordTTL the window: %v", err)
	}
	s.Close()
}

// Every gateway on one Redis keeps records as long: one opened with
// another TTL (or none) is refused, and says how to change it.
func TestOneRecordTTLPerRedis(t *testing.T) {
	first := redis.New(testenv.RedisURL(t))
	first.RecordTTL = 2 * first.DedupeWindow
	first = openOn(t, first, time.Minute)
	for _, ttl := range []time.Duration{0, 3 * first.DedupeWindow} {
		other := redis.New(testenv.RedisURL(t))
		other.Prefix, other.RecordTTL = first.Prefix, ttl
		mustRefuse(t, other, "--redis-record-ttl", "Open with record TTL %s beside %s", ttl, first.RecordTTL)
	}
	same := redis.New(testenv.RedisURL(t))
	same.Prefix, same.RecordTTL = first.Prefix, first.RecordTTL
	if err := same.Open(context.Background()); err != nil {
		t.Fatalf("Open with the same record TTL: %v", err)
	}
	same.Close()
}

// A store not told the shared settings takes those the first gateway
// recorded; one that writes no documents records none, so a tool run
// before the first gateway chooses nothing for it.
func TestSharedSettingsAdopted(t *testing.T) {
	ctx := context.Background()
	url, prefix := testenv.RedisURL(t), testenv.Prefix()
	store := func(adopt, tool bool) *redis.Store {
		s := redis.New(url)
		s.Prefix, s.AdoptWindow, s.AdoptRecordTTL, s.WritesNoDocuments = prefix, adopt, adopt, tool
		return s
	}
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(opts)
	defer rc.Close()
	held := func(key string) string {
		v, err := rc.Get(ctx, prefix+":"+key).Result()
		if errors.Is(err, goredis.Nil) {
			return "none"
		} else if err != nil {
			t.Fatal(err)
		}
		return v
	}

	tool := store(true, true)
	if err := tool.Open(ctx); err != nil {
		t.Fatal(err)
	}
	tool.Close()
	if w, ttl := held("dedupe-window"), held("record-ttl"); w != "none" || ttl != "none" {
		t.Fatalf("a tool recorded a window of %s s and a TTL of %s s; want nothing", w, ttl)
	}

	first := store(false, false)
	first.DedupeWindow, first.RecordTTL = 10*time.Minute, 30*time.Minute
	if err := first.Open(ctx); err != nil {
		t.Fatal(err)
	}
	first.Close()
	for _, s := range []*redis.Store{store(true, false), store(true, true)} {
		if err := s.Open(ctx); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if s.DedupeWindow != 10*time.Minute || s.RecordTTL != 30*time.Minute {
			t.Fatalf("adopted a window of %s and a TTL of %s; want 10m and 30m", s.DedupeWindow, s.RecordTTL)
		}
	}
	// Given, a setting must still match, for a tool too.
	given := store(false, true)
	given.AdoptWindow, given.RecordTTL = true, 2*time.Hour
	mustRefuse(t, given, "--redis-record-ttl", "a tool given another TTL")
	// A window given that differs is named, whatever it makes of the TTL.
	wide := store(false, true)
	wide.AdoptRecordTTL, wide.DedupeWindow = true, time.Hour
	mustRefuse(t, wide, "--redis-dedupe-window", "a tool given a 1h window beside the recorded 10m and 30m TTL")
	// An adopted window is checked against a given TTL (none recorded: a
	// Redis of gateways from before the TTL).
	prefix = testenv.Prefix()
	if err := rc.Set(ctx, prefix+":dedupe-window", 600, 0).Err(); err != nil {
		t.Fatal(err)
	}
	short := store(false, false)
	short.AdoptWindow, short.RecordTTL = true, 5*time.Minute
	mustRefuse(t, short, "RecordTTL", "a 5m TTL beside the recorded 10m window")
}

// Settings are recorded in whole seconds: a window with a fraction of one
// opens, for the first gateway and the next.
func TestSettingsInWholeSeconds(t *testing.T) {
	prefix := testenv.Prefix()
	for range 2 {
		s := redis.New(testenv.RedisURL(t))
		s.Prefix, s.DedupeWindow = prefix, 90500*time.Millisecond
		if err := s.Open(context.Background()); err != nil {
			t.Fatalf("Open with a window of %s: %v", s.DedupeWindow, err)
		}
		s.Close()
		if s.DedupeWindow != 90*time.Second {
			t.Fatalf("the store keeps a window of %s; want 1m30s, as recorded", s.DedupeWindow)
		}
	}
}

// A store with NoDefaults (reindex) takes recorded settings, records given
// ones, and refuses to choose one neither given nor recorded.
func TestNoDefaultsOnAnEmptyRedis(t *testing.T) {
	ctx := context.Background()
	prefix := testenv.Prefix()
	store := func(adoptTTL bool) *redis.Store {
		s := redis.New(testenv.RedisURL(t))
		s.Prefix, s.NoDefaults, s.AdoptWindow, s.AdoptRecordTTL = prefix, true, true, adoptTTL
		return s
	}
	s := store(true)
	mustRefuse(t, s, "--redis-dedupe-window", "Open with nothing given or recorded")
	given := store(false)
	given.AdoptWindow, given.DedupeWindow, given.RecordTTL = false, 2*time.Minute, 3*time.Minute
	if err := given.Open(ctx); err != nil {
		t.Fatalf("Open with both given: %v", err)
	}
	given.Close()
	s = store(true)
	if err := s.Open(ctx); err != nil {
		t.Fatalf("Open with both recorded: %v", err)
	}
	s.Close()
	if s.DedupeWindow != 2*time.Minute || s.RecordTTL != 3*time.Minute {
		t.Fatalf("took %s and %s; want the recorded 2m and 3m", s.DedupeWindow, s.RecordTTL)
	}
}

// Every gateway on one Redis signs with one receipt key: the first records
// it, another key is refused and the error says how to change it.
func TestOneReceiptKeyPerRedis(t *testing.T) {
	s := openOn(t, redis.New(testenv.RedisURL(t)), time.Minute)
	ctx := context.Background()
	a, b := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	for range 2 {
		if err := s.AgreeReceiptKey(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AgreeReceiptKey(ctx, b); err == nil || !strings.Contains(err.Error(), "--receipt-key") || !strings.Contains(err.Error(), "DEL "+s.Prefix+":receipt-key") {
		t.Fatalf("another receipt key: %v; want refused, saying how to change it", err)
	}
}

// Claims are timed in milliseconds with a fraction; one a gateway from
// before wrote in whole milliseconds, or (a few builds) whole
// microseconds, still holds its key while fresh and gives way once stale,
// and Holder tells its time.
func TestClaimOfAnOlderGateway(t *testing.T) {
	ctx := context.Background()
	s := openOn(t, redis.New(testenv.RedisURL(t)), time.Minute)
	now := time.Now()
	for _, unit := range []string{"ms", "µs"} {
		for _, c := range []struct {
			age  time.Duration
			want string
		}{{time.Second, "old-doc"}, {10 * time.Minute, "new-doc"}} {
			key := "one-bill:OLD-" + unit + c.age.String()
			at := now.Add(-c.age)
			old := fmt.Sprintf("~old-doc@%d", at.UnixMilli())
			if unit == "µs" {
				old = fmt.Sprintf("~old-doc@%d", at.UnixMicro())
			}
			if err := s.Cmd().Set(ctx, s.Prefix+":key:"+key, old, 0).Err(); err != nil {
				t.Fatal(err)
			}
			if id, since, err := s.Holder(ctx, key); err != nil || id != "old-doc" || since.Sub(at).Abs() > time.Millisecond {
				t.Fatalf("Holder of a claim %s old in %s = %s since %v, %v; want old-doc since %v", c.age, unit, id, since, err, at)
			}
			holder, made, err := s.Claim(ctx, key, "new-doc", now, now.Add(-2*time.Minute))
			if err != nil || holder != c.want || made != (c.want == "new-doc") {
				t.Fatalf("Claim beside a claim %s old in %s = %s, made %v, %v; want %s", c.age, unit, holder, made, err, c.want)
			}
		}
	}
}

// A running gateway records its shared settings and receipt key again
// once Redis lost them, so a gateway started then without the flags takes
// them (not the defaults); one recorded since that differs is an error.
func TestKeepSettingsAfterRedisLostThem(t *testing.T) {
	ctx := context.Background()
	s := redis.New(testenv.RedisURL(t))
	s.DedupeWindow, s.RecordTTL = 10*time.Minute, 30*time.Minute
	s = openOn(t, s, time.Minute)
	pub := bytes.Repeat([]byte{5}, 32)
	if err := s.AgreeReceiptKey(ctx, pub); err != nil {
		t.Fatal(err)
	}
	keys := []string{s.Prefix + ":dedupe-window", s.Prefix + ":record-ttl", s.Prefix + ":receipt-key"}
	if err := s.Cmd().Del(ctx, keys...).Err(); err != nil { // Redis lost its data
		t.Fatal(err)
	}
	if err := s.KeepSettings(ctx); err != nil {
		t.Fatal(err)
	}
	later := redis.New(testenv.RedisURL(t))
	later.Prefix, later.AdoptWindow, later.AdoptRecordTTL = s.Prefix, true, true
	if err := later.Open(ctx); err != nil {
		t.Fatal(err)
	}
	later.Close()
	if later.DedupeWindow != 10*time.Minute || later.RecordTTL != 30*time.Minute {
		t.Fatalf("a gateway started after took %s and %s; want the running one's 10m and 30m", later.DedupeWindow, later.RecordTTL)
	}
	if err := s.AgreeReceiptKey(ctx, bytes.Repeat([]byte{6}, 32)); err == nil {
		t.Fatal("another receipt key beside the one kept: accepted")
	}
	if err := s.Cmd().Del(ctx, keys[2]).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.KeepSettings(ctx); err != nil { // the key agreed, not the one refused
		t.Fatal(err)
	}
	if got, err := s.Cmd().Get(ctx, keys[2]).Result(); err != nil || got != base64.StdEncoding.EncodeToString(pub) {
		t.Fatalf("the receipt key recorded again: %q, %v; want the one agreed", got, err)
	}
	if err := s.Cmd().Set(ctx, keys[0], 3600, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.KeepSettings(ctx); err == nil || !strings.Contains(err.Error(), "--redis-dedupe-window") {
		t.Fatalf("KeepSettings beside another window recorded: %v; want an error", err)
	}
}

// The claim script of a gateway from before 2026-11-27 (milliseconds, a
// string answer), verbatim.
var oldClaim = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return ARGV[1] end
if v and string.sub(v, 1, 1) ~= '~' then return v end
if v then
  local at = string.find(v, '@', 1, true)
  local holder = string.sub(v, 2, at - 1)
  if holder ~= ARGV[1] and tonumber(string.sub(v, at + 1)) >= tonumber(ARGV[3]) then return holder end
end
redis.call('SET', KEYS[1], '~' .. ARGV[1] .. '@' .. ARGV[2])
return ARGV[1]`)

// Rolling upgrade or back: a claim a new gateway left (its submission cut
// short 10 minutes ago) is stale for a gateway from before too, which
// reads claim times as milliseconds (the new ones carry the microseconds
// as a fraction).
func TestAnOlderGatewayReadsNewClaims(t *testing.T) {
	ctx := context.Background()
	s := openOn(t, redis.New(testenv.RedisURL(t)), time.Minute)
	now := time.Now()
	key := "one-bill:ROLLBACK"
	if _, made, err := s.Claim(ctx, key, "cut-short", now.Add(-10*time.Minute), now.Add(-12*time.Minute)); err != nil || !made {
		t.Fatal(made, err)
	}
	nat := s.Prefix + ":key:" + key
	holder, err := oldClaim.Run(ctx, s.Cmd(), []string{nat}, "other", now.UnixMilli(), now.Add(-2*time.Minute).UnixMilli()).Text()
	if err != nil {
		t.Fatal(err)
	}
	if holder != "other" {
		t.Errorf("an old gateway's claim beside a new claim 10 minutes old: holder %s; want other (the claim is stale)", holder)
	}
}

// mustRefuse opens s and fails the test unless Open is refused with an
// error naming want; what (a format, with args) says which store it is.
func mustRefuse(t *testing.T, s *redis.Store, want, what string, args ...any) {
	t.Helper()
	err := s.Open(context.Background())
	if err == nil {
		s.Close()
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf(what+": %v; want refused (naming %s)", append(args, err, want)...)
	}
}
