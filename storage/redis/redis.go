// Package redis keeps Corridor's inboxes and indexes in Redis: one stream
// per party with a consumer group (XREADGROUP to pull, XACK to ack,
// XAUTOCLAIM to deliver again what was not acked in time), and indexes of
// documents, shipments and natural keys. Everything here can be rebuilt
// from the archive (corridor reindex).
//
// It runs on one server, on Sentinel or on a Redis Cluster. For the
// cluster, every script touches the keys of one hash slot (a party's inbox
// keys share the hash tag {party}; the other scripts touch one key), and
// pipelines, which may span slots, use no MULTI: go-redis splits them by
// node; with WaitReplicas, writes are split by master here, so that each
// master's WAIT follows its writes on their connection.
package redis

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/exchange"
)

// Store implements exchange.Queue and exchange.Index on Redis: one server
// (URL), a master watched by Sentinel (Sentinels and MasterName), or a
// Redis Cluster (Cluster).
type Store struct {
	// URL is a redis:// or rediss:// URL of one server.
	URL string
	// Sentinels are the host:port of Redis Sentinels watching the master
	// named MasterName; when set, URL is not used.
	Sentinels  []string
	MasterName string
	// Cluster holds host:port of some nodes of a Redis Cluster (the others
	// are discovered); when set, URL is not used.
	Cluster []string
	// Username and Password authenticate to the servers found through
	// Sentinel or Cluster (a URL carries its own).
	Username, Password string
	// WaitReplicas, when above 0, makes every write wait (WAIT) until that
	// many replicas have it, at most WaitTimeout, and fail as unavailable
	// if they do not: replication is asynchronous, and a replica that
	// Sentinel or a cluster promotes after the master dies has only what
	// reached it. On a cluster every master a write touches must have that
	// many replicas.
	WaitReplicas int
	WaitTimeout  time.Duration
	// Prefix starts every key, so several gateways can share a server.
	Prefix string
	// VisibilityTimeout is how long a pulled message stays with its
	// puller before it is delivered again unless acked.
	VisibilityTimeout time.Duration
	// PollChunk bounds one blocking read; it is kept well below the
	// client's read timeout, and it is how soon a long poll notices a
	// message whose visibility timeout ran out.
	PollChunk time.Duration
	// DedupeWindow is how long after a document was received its inbox
	// messages are remembered once acked, so that enqueueing it again
	// adds nothing (see Enqueue).
	DedupeWindow time.Duration
	// RecordTTL, when above 0, keeps a document's record in Redis only
	// that long after it was received (at least DedupeWindow); after that
	// Doc answers ErrNotFound and Page lists it with a zero record, and
	// the service reads it from the archive. Its list entries and natural
	// keys stay. 0 keeps records as long as Redis keeps its data.
	RecordTTL time.Duration
	// DedupeWindow and RecordTTL are shared: every gateway on one Redis
	// keeps the same, recorded by the first to open it. AdoptWindow and
	// AdoptRecordTTL say the caller did not choose one: Open takes the
	// recorded value (keeping the field's where none is recorded yet).
	AdoptWindow, AdoptRecordTTL bool
	// WritesNoDocuments is set by a tool that indexes and queues nothing
	// (corridor parties): Open records no shared setting, so such a tool
	// run before the first gateway does not choose them for it.
	WritesNoDocuments bool
	// NoDefaults refuses a setting neither given (Adopt*) nor recorded,
	// rather than recording the field's: `corridor reindex` on a Redis
	// that lost its data must not choose them for the gateways running
	// (a record TTL left out would put every record back in Redis).
	NoDefaults bool

	// Segments, with CompactAfter above 0, is where Compact moves the
	// entries of a shipment's timeline (exchange.Compactable) older than
	// CompactAfter (by their position's time), out of Redis (segments.go).
	// Set both on every gateway of a Redis: a gateway without them files
	// entries that wait for another's next to be moved.
	Segments     exchange.Blobs
	CompactAfter time.Duration

	cmd  goredis.UniversalClient // short commands
	poll goredis.UniversalClient // blocking reads, in their own pool so they cannot starve cmd

	records     *exchange.RecordCache        // the index's records, decoded
	segs        *lru.Cache[string, []string] // segments read, by object
	segmentSize int                          // entries a segment holds; 0: segmentMax
	receiptKey  []byte                       // agreed by AgreeReceiptKey
}

var (
	_ exchange.ForgetfulQueue = (*Store)(nil)
	_ exchange.ForgetfulIndex = (*Store)(nil)
)

const group = "gateway"
const consumer = "gateway"

// New returns a store for url with defaults set; call Open before use.
// Set Sentinels and MasterName, or Cluster, instead of url for those.
func New(url string) *Store {
	return &Store{URL: url, Prefix: "corridor", VisibilityTimeout: 30 * time.Second, PollChunk: 500 * time.Millisecond,
		WaitTimeout: time.Second, DedupeWindow: DefaultDedupeWindow, records: exchange.NewRecordCache(recordCacheBytes, unpackRecord),
		segs: must(lru.New[string, []string](segmentCacheSize))}
}

// DefaultDedupeWindow: far longer than a submission or a sweep of the
// outbox takes to end (seconds), short enough that the marks of a busy
// corridor stay small (200 documents a second to 5 parties: ~290 MB).
const DefaultDedupeWindow = time.Hour

// MinDedupeWindow is the shortest window Open accepts.
const MinDedupeWindow = time.Minute

// ForgetsAfter implements exchange.ForgetfulQueue: the marks of a
// document live at least DedupeWindow after it was received.
func (s *Store) ForgetsAfter() time.Duration { return s.DedupeWindow }

// segmentCacheSize bounds the segments kept read (up to ~250 KB each).
const segmentCacheSize = 64

// recordCacheBytes bounds the decoded records kept, as
// exchange.RecordCache reckons them (somewhat more than they take): some
// 10,000 records the size of the demo's, enough for the graphs of the
// shipments being written to, or some 300 one bills of a thousand
// containers each.
const recordCacheBytes = 32 << 20

// Open connects and checks that Redis answers and can run the store's
// scripts (Redis 7.0 or later). A Redis that does not answer gives an
// ErrUnavailable error and leaves the store usable (it answers
// ErrUnavailable until Redis is back); one refused leaves nothing open.
func (s *Store) Open(ctx context.Context) error {
	if s.WaitReplicas > 0 && (s.WaitTimeout <= 0 || s.WaitTimeout >= 3*time.Second) {
		// A pipeline is read with go-redis' default 3 s read timeout.
		return errors.New("redis: WaitTimeout must be above 0 and below 3s")
	}
	if !s.AdoptWindow && !s.AdoptRecordTTL {
		if err := s.validSettings(); err != nil { // refused even while Redis is down
			return err
		}
	}
	var err error
	if s.cmd, err = s.client(0, 0); err != nil {
		return err
	}
	if s.poll, err = s.client(64, s.PollChunk+3*time.Second); err != nil {
		s.cmd.Close()
		s.cmd = nil
		return err
	}
	if err := s.check(ctx); err != nil {
		if !errors.Is(err, exchange.ErrUnavailable) { // refused: nothing is left open
			s.Close()
			s.cmd, s.poll = nil, nil
		}
		return err
	}
	return nil
}

// probeScript does on a key of its own what the inbox marks need of Redis:
// EXPIREAT ... GT came with Redis 7.0.
var probeScript = goredis.NewScript(`
redis.call('SET', KEYS[1], '1', 'EX', 60)
local r = redis.call('EXPIREAT', KEYS[1], ARGV[1], 'GT')
redis.call('DEL', KEYS[1])
return r`)

// check reports whether Redis answers and can run the store's scripts; an
// older server is refused with a clear error (asking it its version needs
// INFO, which an account with least privileges may not have).
func (s *Store) check(ctx context.Context) error {
	if err := s.Ping(ctx); err != nil {
		return err
	}
	err := probeScript.Run(ctx, s.cmd, []string{s.Prefix + ":probe"}, time.Now().Add(2*time.Minute).Unix()).Err()
	var rerr goredis.Error
	if errors.As(err, &rerr) && !transient(rerr.Error()) {
		return fmt.Errorf("redis: Corridor needs Redis 7.0 or later (EXPIREAT ... GT): %w", err)
	} else if err != nil {
		return wrap(err)
	}
	// Every gateway on this Redis must keep marks as long as the others
	// think they are kept (a retry that one gateway thinks is within the
	// window would deliver again what another's shorter window forgot),
	// and records as long (one without a TTL would keep for ever the
	// records it writes again, one with a shorter TTL would drop them).
	// Recorded in whole seconds, so kept so (a gateway keeping 90.5s
	// beside others adopting 90s would not agree with them).
	s.DedupeWindow, s.RecordTTL = s.DedupeWindow.Truncate(time.Second), s.RecordTTL.Truncate(time.Second)
	settings := s.settings()
	held, err := s.recorded(ctx, settings, false)
	if err != nil {
		return err
	}
	adopt(settings, held)
	for i, st := range settings {
		if st.adopt && held[i] < 0 && s.NoDefaults {
			return fmt.Errorf("redis: no gateway recorded %s on this Redis (did it lose its data?): give %s as the gateways run", st.what, st.flag)
		}
	}
	// A setting given that differs is refused first, the error naming it
	// (rather than what it makes of the other setting).
	if err := differ(settings, held); err != nil {
		return err
	}
	if err := s.validSettings(); err != nil {
		return err
	}
	if s.WritesNoDocuments {
		return nil
	}
	// Recorded by the first; one recorded in between (a gateway starting
	// at the same time) is taken where ours was not given, else compared.
	if held, err = s.recorded(ctx, settings, true); err != nil {
		return err
	}
	if adopt(settings, held) {
		if err := s.validSettings(); err != nil {
			return err
		}
	}
	return differ(settings, held)
}

// adopt takes each recorded setting (held, -1 where none is) the caller
// did not give; it reports whether any changed.
func adopt(settings []setting, held []time.Duration) bool {
	changed := false
	for i, st := range settings {
		if st.adopt && held[i] >= 0 && *st.d != held[i] {
			*st.d, changed = held[i], true
		}
	}
	return changed
}

// differ refuses a setting that differs from the one recorded (held, -1
// where none is).
func differ(settings []setting, held []time.Duration) error {
	for i, st := range settings {
		if held[i] >= 0 && held[i] != *st.d {
			return fmt.Errorf("redis: the gateways on this Redis keep %s of %s, this one %s: give them all the same "+
				"%s, or leave it out to take theirs (to change it, stop every gateway, then DEL %s)", st.what, held[i], *st.d, st.flag, st.key)
		}
	}
	return nil
}

// settings are the store's shared settings.
func (s *Store) settings() []setting {
	return []setting{
		{s.windowKey(), &s.DedupeWindow, s.AdoptWindow, "a dedupe window", "--redis-dedupe-window"},
		{s.Prefix + ":record-ttl", &s.RecordTTL, s.AdoptRecordTTL, "a record TTL", "--redis-record-ttl"}}
}

// KeepSettings records the shared settings (and the receipt key agreed)
// again where Redis lost them: a gateway runs it every few seconds, so
// that after Redis lost its data a gateway or command started without the
// flags takes the running gateways' settings, not the defaults. It fails
// when another value was recorded since.
func (s *Store) KeepSettings(ctx context.Context) error {
	if s.WritesNoDocuments {
		return nil
	}
	settings := s.settings()
	held, err := s.recorded(ctx, settings, true)
	if err != nil {
		return err
	}
	if err := differ(settings, held); err != nil {
		return err
	}
	if s.receiptKey != nil {
		return s.AgreeReceiptKey(ctx, s.receiptKey)
	}
	return nil
}

// validSettings refuses a dedupe window or record TTL the store cannot keep.
func (s *Store) validSettings() error {
	if s.DedupeWindow < MinDedupeWindow {
		// A submission or a sweep of the outbox must end within it.
		return fmt.Errorf("redis: DedupeWindow %s is below %s", s.DedupeWindow, MinDedupeWindow)
	}
	if s.RecordTTL != 0 && s.RecordTTL < s.DedupeWindow {
		// A retry within the window is answered from the record in Redis.
		return fmt.Errorf("redis: RecordTTL %s is below the dedupe window (%s)", s.RecordTTL, s.DedupeWindow)
	}
	return nil
}

// A setting every gateway on one Redis must share: recorded under key (in
// seconds) by the first; adopt takes the recorded one.
type setting struct {
	key        string
	d          *time.Duration
	adopt      bool
	what, flag string
}

// recorded returns each setting's recorded value (-1 where none is) in one
// round trip; with record, it records ours where none is (SET NX GET).
func (s *Store) recorded(ctx context.Context, settings []setting, record bool) ([]time.Duration, error) {
	cmds := make([]interface{ Result() (string, error) }, len(settings))
	_, err := s.cmd.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, st := range settings {
			if record {
				cmds[i] = p.SetArgs(ctx, st.key, int64(*st.d/time.Second), goredis.SetArgs{Mode: "NX", Get: true})
			} else {
				cmds[i] = p.Get(ctx, st.key)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return nil, wrap(err)
	}
	out := make([]time.Duration, len(settings))
	for i, c := range cmds {
		v, err := c.Result()
		if errors.Is(err, goredis.Nil) {
			out[i] = -1
			continue
		} else if err != nil {
			return nil, wrap(err)
		}
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs < 0 {
			return nil, fmt.Errorf("redis: %s holds %q, not a number of seconds", settings[i].key, v)
		}
		out[i] = time.Duration(secs) * time.Second
	}
	return out, nil
}

// AgreeReceiptKey records the public key that signs receipts if no gateway
// on this Redis did, else refuses another: receipts and title entries
// signed by one gateway must verify with the key any other publishes.
func (s *Store) AgreeReceiptKey(ctx context.Context, pub []byte) error {
	key := s.Prefix + ":receipt-key"
	ours := base64.StdEncoding.EncodeToString(pub)
	held, err := s.cmd.SetArgs(ctx, key, ours, goredis.SetArgs{Mode: "NX", Get: true}).Result()
	if err != nil && !errors.Is(err, goredis.Nil) { // (Nil: the first, recorded)
		return wrap(err)
	}
	if err == nil && held != ours {
		return fmt.Errorf("redis: the gateways on this Redis sign receipts with the key %s, this one with %s: give them all "+
			"the same receipt key file (--receipt-key; to change it, stop every gateway, then DEL %s)", held, ours, key)
	}
	s.receiptKey = pub // (kept recorded by KeepSettings)
	return nil
}

// windowKey holds the dedupe window (seconds) the first gateway on this
// Redis was opened with.
func (s *Store) windowKey() string { return s.Prefix + ":dedupe-window" }

// client makes one pool (per server, with Sentinel or Cluster); a zero
// poolSize or readTimeout keeps go-redis' default.
func (s *Store) client(poolSize int, readTimeout time.Duration) (goredis.UniversalClient, error) {
	switch {
	case len(s.Cluster) > 0 && len(s.Sentinels) > 0:
		return nil, errors.New("redis: choose Sentinel or Cluster, not both")
	case len(s.Cluster) > 0:
		return goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: s.Cluster,
			Username: s.Username, Password: s.Password, PoolSize: poolSize, ReadTimeout: readTimeout}), nil
	case len(s.Sentinels) > 0:
		if s.MasterName == "" {
			return nil, errors.New("redis: Sentinel needs the master's name")
		}
		// Sentinel and the servers it names share the credentials.
		return goredis.NewFailoverClient(&goredis.FailoverOptions{MasterName: s.MasterName, SentinelAddrs: s.Sentinels,
			Username: s.Username, Password: s.Password, SentinelUsername: s.Username, SentinelPassword: s.Password,
			PoolSize: poolSize, ReadTimeout: readTimeout}), nil
	}
	opts, err := goredis.ParseURL(s.URL)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	if poolSize > 0 {
		opts.PoolSize = poolSize
	}
	if readTimeout > 0 {
		opts.ReadTimeout = readTimeout
	}
	return goredis.NewClient(opts), nil
}

// Close closes both pools.
func (s *Store) Close() error {
	if s.cmd == nil {
		return nil
	}
	return errors.Join(s.cmd.Close(), s.poll.Close())
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	return wrap(s.cmd.Ping(ctx).Err())
}

// wrap translates driver errors: a reply from Redis is an internal error;
// anything else (connection refused, time-outs, closed pool) means Redis
// cannot be reached.
func wrap(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// Cut short by the request's context: the caller may retry, as
		// after a time-out (storage/s3 says the same).
		return fmt.Errorf("redis: %w: %w", err, exchange.ErrUnavailable)
	}
	if errors.Is(err, goredis.Nil) {
		return exchange.ErrNotFound
	}
	var rerr goredis.Error
	if errors.As(err, &rerr) && !transient(rerr.Error()) {
		return fmt.Errorf("redis: %w", err)
	}
	return fmt.Errorf("redis: %v: %w", err, exchange.ErrUnavailable)
}

// transient tells the replies of a Redis that cannot serve for now: a
// replica not yet promoted or a master just demoted (READONLY), a server
// loading its data, a cluster moving slots or missing a master, a master
// short of replicas (min-replicas-to-write). They are worth a retry.
func transient(reply string) bool {
	for _, p := range []string{"READONLY ", "LOADING ", "MASTERDOWN ", "CLUSTERDOWN ", "TRYAGAIN ", "NOREPLICAS ", "MOVED ", "ASK "} {
		if strings.HasPrefix(reply, p) {
			return true
		}
	}
	return false
}

// A step is one command (or script) of a write, queued by run, and a
// key it touches: on a cluster, the master of that key's hash slot runs it.
// run queues scripts with eval (see write).
type step struct {
	key string
	run func(p goredis.Pipeliner, eval evalFunc)
}

// evalFunc queues a script in a pipeline: EVALSHA or EVAL.
type evalFunc func(sc *goredis.Script, ctx context.Context, c goredis.Scripter, keys []string, args ...any) *goredis.Cmd

// errNoScript marks a pipeline in which a server did not have a script.
var errNoScript = errors.New("redis: NOSCRIPT")

// write sends the steps in one pipeline, then, when WaitReplicas is set,
// WAIT on the same connection, so the write counts only once the replicas
// have it. On a cluster with WaitReplicas, the steps go in one pipeline per
// master, each with its WAIT: WAIT counts the replicas of the connection's
// own server, and go-redis would send it, a keyless command, to a master
// of its choosing, on another connection. Its errors are already wrapped.
//
// Scripts go as EVALSHA: Redis then neither receives nor hashes the
// script's text (EVAL cost it 22 us a call against 13 us). A server without
// the script (restarted empty, just promoted, a new cluster node) answers
// NOSCRIPT, and the write runs again with EVAL, which loads it: every write
// here is idempotent, and a script that got NOSCRIPT did not run.
func (s *Store) write(ctx context.Context, steps ...step) error {
	err := s.writeWith(ctx, (*goredis.Script).EvalSha, steps)
	if errors.Is(err, errNoScript) {
		err = s.writeWith(ctx, (*goredis.Script).Eval, steps)
	}
	return err
}

func (s *Store) writeWith(ctx context.Context, eval evalFunc, steps []step) error {
	cc, ok := s.cmd.(*goredis.ClusterClient)
	if !ok || s.WaitReplicas == 0 {
		return s.pipeline(ctx, s.cmd, eval, steps)
	}
	byMaster := map[*goredis.Client][]step{}
	var masters []*goredis.Client
	for _, st := range steps {
		m, err := cc.MasterForKey(ctx, st.key)
		if err != nil {
			return wrap(err)
		}
		if byMaster[m] == nil {
			masters = append(masters, m)
		}
		byMaster[m] = append(byMaster[m], st)
	}
	errs := make([]error, len(masters))
	var wg sync.WaitGroup
	for i, m := range masters {
		wg.Go(func() { errs[i] = s.pipeline(ctx, m, eval, byMaster[m]) })
	}
	wg.Wait()
	err := errors.Join(errs...)
	if err != nil {
		// A master may have died or handed its slots on (MOVED): the client
		// follows that itself only for commands sent through it. (Also on
		// NOSCRIPT: another master's route may be stale, and the rerun
		// should not find it so. The reload is lazy and cheap.)
		cc.ReloadState(ctx)
	}
	return err
}

// pipeline runs steps in one pipeline of c, and WAIT after them when
// WaitReplicas is set.
func (s *Store) pipeline(ctx context.Context, c goredis.Cmdable, eval evalFunc, steps []step) error {
	var wait *goredis.Cmd
	_, err := c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, st := range steps {
			st.run(p, eval)
		}
		if s.WaitReplicas > 0 {
			wait = p.Do(ctx, "WAIT", s.WaitReplicas, s.WaitTimeout.Milliseconds())
		}
		return nil
	})
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		return fmt.Errorf("%w: %v", errNoScript, err)
	}
	if err != nil {
		return wrap(err)
	}
	if wait == nil {
		return nil
	}
	if n, _ := wait.Int(); n < s.WaitReplicas {
		return fmt.Errorf("redis: %d of %d replicas have the write after %s: %w",
			n, s.WaitReplicas, s.WaitTimeout, exchange.ErrUnavailable)
	}
	return nil
}

// Keys of one party share a hash tag, so scripts work on Redis Cluster:
// its inbox (a stream), its pending messages (document id -> entry id),
// and the documents it was sent, in sets by the minute they were received
// (delivered:<unix minute>), each kept DedupeWindow (and a margin) after
// its minute ends. The three are cut from one string (Enqueue makes them
// for every recipient of every document). The set "delivered" without a
// minute was kept forever by gateways before these; Enqueue still reads
// it, and it can be deleted once a window has passed since the last of
// those gateways stopped (see the README).
func (s *Store) inboxKeys(party string) []string {
	p := s.Prefix + ":{" + party + "}:"
	all := p + "inbox" + p + "delivered" + p + "pending"
	i, d := len(p)+len("inbox"), 2*len(p)+len("inbox")+len("delivered")
	return []string{all[:i], all[i:d], all[d:]}
}

// KEYS: inbox, delivered (of before), pending, delivered that minute.
// ARGV: document id, message, when that minute's set is to expire (Unix s,
// on Redis' clock), the margin (s). A set's expiry is only ever put later
// (gateways may run with other windows), and at least the margin after
// now: each enqueue of a document keeps its mark that long, so a delivery
// that sweeps keep completing past the window (its last step failing)
// queues nothing twice. A pending message is never added twice.
var enqueueScript = goredis.NewScript(`
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
local at = math.max(tonumber(ARGV[3]), tonumber(redis.call('TIME')[1]) + tonumber(ARGV[4]))
local marked = redis.call('SADD', KEYS[4], ARGV[1]) == 0
if redis.call('TTL', KEYS[4]) < 0 then redis.call('EXPIREAT', KEYS[4], at) else redis.call('EXPIREAT', KEYS[4], at, 'GT') end
if marked or redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then return 0 end
local id = redis.call('XADD', KEYS[1], '*', 'doc', ARGV[1], 'msg', ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], id)
return 1`)

// Enqueue adds a message once per document and party: each party's marks
// and stream entry change in one script, so a retried call adds nothing.
// The parties' scripts go in one pipeline. A document is known to a
// party's inbox while its message is pending and, once acked, until the
// minute it was received ends plus DedupeWindow plus a margin for the
// clocks of the gateways and Redis (markSlack), and at least markSlack
// after it was last enqueued: then the marks expire, and Redis keeps
// nothing of an acked message. Enqueued again after that (by reindex
// --requeue) it comes again. A message must carry the time its document
// was received.
func (s *Store) Enqueue(ctx context.Context, m exchange.Message, parties ...string) error {
	if m.ReceivedAt.IsZero() {
		return fmt.Errorf("enqueue %s: the message has no receivedAt", m.DocumentID)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	minute := m.ReceivedAt.Unix() / 60
	bucket := ":" + strconv.FormatInt(minute, 10)
	slack := markSlack(s.DedupeWindow)
	expireAt := (minute+1)*60 + int64((s.DedupeWindow+slack)/time.Second)
	steps := make([]step, len(parties))
	for i, party := range parties {
		keys := s.inboxKeys(party)
		keys = append(keys, keys[1]+bucket)
		steps[i] = step{keys[0], func(p goredis.Pipeliner, eval evalFunc) {
			eval(enqueueScript, ctx, p, keys, m.DocumentID, raw, expireAt, int64(slack/time.Second))
		}}
	}
	return s.write(ctx, steps...)
}

// markSlack is how much longer than the window the marks are kept: a
// gateway tells a retry it will not deliver again by its own clock
// (exchange.ForgetfulQueue), while Redis expires the marks by its own.
func markSlack(window time.Duration) time.Duration { return max(5*time.Minute, window/10) }

var ackScript = goredis.NewScript(`
local n = 0
for i = 2, #ARGV do
  local id = redis.call('HGET', KEYS[3], ARGV[i])
  if id then
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('XDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[3], ARGV[i])
    n = n + 1
  end
end
return n`)

// Ack acks and deletes the party's pending messages of these documents.
// Only acked entries are ever deleted: inboxes are never trimmed by length.
func (s *Store) Ack(ctx context.Context, party string, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, group)
	for _, id := range ids {
		args = append(args, id)
	}
	var res *goredis.Cmd
	keys := s.inboxKeys(party)
	if err := s.write(ctx, step{keys[0], func(p goredis.Pipeliner, eval evalFunc) { res = eval(ackScript, ctx, p, keys, args...) }}); err != nil {
		return 0, err
	}
	return res.Int()
}

// Pull returns messages whose visibility timeout ran out, then new ones,
// waiting up to wait in bounded blocking reads.
func (s *Store) Pull(ctx context.Context, party string, limit int, wait time.Duration) ([]exchange.Message, error) {
	stream := s.inboxKeys(party)[0]
	deadline := time.Now().Add(wait)
	for {
		msgs, err := s.pullOnce(ctx, stream, limit, time.Until(deadline))
		if isNoGroup(err) {
			// Redis restarted empty, or the inbox is new: make the group and go on.
			if err := s.createGroup(ctx, stream); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil || len(msgs) > 0 || !time.Now().Before(deadline) {
			return msgs, wrap(err)
		}
	}
}

func isNoGroup(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOGROUP")
}

func (s *Store) createGroup(ctx context.Context, stream string) error {
	err := s.cmd.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return wrap(err)
	}
	return nil
}

func (s *Store) pullOnce(ctx context.Context, stream string, limit int, remaining time.Duration) ([]exchange.Message, error) {
	claimed, _, err := s.cmd.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
		Stream: stream, Group: group, Consumer: consumer, MinIdle: s.VisibilityTimeout, Start: "0-0", Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, err
	}
	out := decode(claimed)
	if len(out) >= limit {
		return out, nil
	}
	block := time.Duration(-1) // no BLOCK argument: return at once
	if len(out) == 0 && remaining > 0 {
		block = max(min(remaining, s.PollChunk), time.Millisecond)
	}
	res, err := s.poll.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: group, Consumer: consumer, Streams: []string{stream, ">"}, Count: int64(limit - len(out)), Block: block,
	}).Result()
	if errors.Is(err, goredis.Nil) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, st := range res {
		out = append(out, decode(st.Messages)...)
	}
	return out, nil
}

func decode(entries []goredis.XMessage) []exchange.Message {
	out := make([]exchange.Message, 0, len(entries))
	for _, e := range entries {
		raw, _ := e.Values["msg"].(string)
		var m exchange.Message
		if json.Unmarshal([]byte(raw), &m) == nil && m.DocumentID != "" {
			out = append(out, m)
		}
	}
	return out
}

// ---- index ----

func (s *Store) docKey(id string) string { return s.Prefix + ":doc:" + id }
func (s *Store) listKey(l string) string { return s.Prefix + ":list:" + l }
func (s *Store) natKey(k string) string  { return s.Prefix + ":key:" + k }

// Add indexes a record. Every command is idempotent, so the pipeline can be
// run again after a failure. A list is a sorted set whose members all
// score 0, so they sort by their bytes (the positions) and page by range.
func (s *Store) Add(ctx context.Context, rec exchange.Record, entries []exchange.Entry) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	packed, err := packRecord(raw)
	if err != nil {
		return err
	}
	doc, until := s.docKey(rec.ID), s.recordUntil(rec)
	steps := []step{{doc, func(p goredis.Pipeliner, _ evalFunc) {
		if until.IsZero() || until.After(time.Now()) {
			p.SetArgs(ctx, doc, packed, goredis.SetArgs{ExpireAt: until})
		} else {
			p.Del(ctx, doc) // past its TTL: kept by a gateway before the TTL was set, it goes now (reindex)
		}
	}}}
	reg := s.compactKey()
	for _, e := range entries {
		list := s.listKey(e.List)
		steps = append(steps, step{list, func(p goredis.Pipeliner, _ evalFunc) { p.ZAdd(ctx, list, goredis.Z{Score: 0, Member: e.Pos}) }})
		if s.compacting(e.List) && s.CompactAfter > 0 { // after the entry (reschedule)
			at := float64(exchange.PositionTime(e.Pos).UnixMicro())
			steps = append(steps, step{reg, func(p goredis.Pipeliner, _ evalFunc) { p.ZAddLT(ctx, reg, goredis.Z{Score: at, Member: e.List}) }})
		}
	}
	for _, k := range rec.Keys {
		nat := s.natKey(k)
		steps = append(steps, step{nat, func(p goredis.Pipeliner, eval evalFunc) {
			eval(confirmScript, ctx, p, []string{nat}, rec.ID, rec.PreviousID)
		}})
	}
	return s.write(ctx, steps...)
}

// KeepsRecords implements exchange.ForgetfulIndex: RecordTTL.
func (s *Store) KeepsRecords() time.Duration { return s.RecordTTL }

// recordUntil is when a record leaves Redis (zero: never).
func (s *Store) recordUntil(rec exchange.Record) time.Time {
	if s.RecordTTL <= 0 {
		return time.Time{}
	}
	return rec.ReceivedAt.Add(s.RecordTTL)
}

// Doc returns an indexed record.
func (s *Store) Doc(ctx context.Context, id string) (exchange.Record, error) {
	raw, err := s.cmd.Get(ctx, s.docKey(id)).Bytes()
	if err != nil {
		return exchange.Record{}, wrap(err)
	}
	return s.records.Decode(raw)
}

// Page returns a page of a list with its records: a ZRANGE BYLEX, then
// the records (docs).
func (s *Store) Page(ctx context.Context, list, after string, limit int, desc bool) ([]exchange.Item, error) {
	pages, err := s.Pages(ctx, exchange.PageQuery{List: list, After: after, Limit: limit, Desc: desc})
	if err != nil {
		return nil, err
	}
	return pages[0], nil
}

var _ exchange.Pager = (*Store)(nil)

// Pages reads several pages in two round trips: their ZRANGEs in one
// pipeline (with the segments of a list compacted, merged in: segments.go),
// then all their records at once (docs). A limit of 0 reads nothing (a
// ZRANGE without a count would read the whole list).
func (s *Store) Pages(ctx context.Context, qs ...exchange.PageQuery) ([][]exchange.Item, error) {
	ranges := make([]*goredis.StringSliceCmd, len(qs))
	segs := make([]*goredis.StringSliceCmd, len(qs))
	_, err := s.cmd.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, q := range qs {
			if q.Limit > 0 {
				ranges[i] = p.ZRangeArgs(ctx, s.rangeArgs(q.List, q.After, q.Limit, q.Desc))
				if s.compacting(q.List) {
					segs[i] = p.ZRangeArgs(ctx, s.segmentArgs(q.List))
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap(err)
	}
	got := make([][]string, len(qs))
	var all []string
	for i, r := range ranges {
		if r == nil {
			continue
		}
		got[i] = r.Val()
		if segs[i] != nil && len(segs[i].Val()) > 0 {
			gs, err := s.parseSegments(qs[i].List, segs[i].Val())
			if err != nil {
				return nil, err
			}
			if got[i], err = s.withSegments(ctx, qs[i], got[i], gs); err != nil {
				return nil, err
			}
		}
		all = append(all, got[i]...)
	}
	items, err := s.docs(ctx, all)
	if err != nil {
		return nil, err
	}
	out := make([][]exchange.Item, len(qs))
	for i := range qs {
		n := len(got[i])
		out[i], items = items[:n:n], items[n:]
	}
	return out, nil
}

// rangeArgs is the ZRANGE BYLEX of up to n entries of a list after after
// ("" for the start), descending when desc: positions, short of the
// members of its segments (segments.go).
func (s *Store) rangeArgs(list, after string, n int, desc bool) goredis.ZRangeArgs {
	lo, hi := "-", entriesHi
	if after != "" && desc {
		hi = "(" + min(after, "~")
	} else if after != "" {
		lo = "(" + after
	}
	args := goredis.ZRangeArgs{Key: s.listKey(list), Start: lo, Stop: hi, ByLex: true, Count: int64(n)}
	if desc {
		args.Start, args.Stop, args.Rev = hi, lo, true
	}
	return args
}

// docs reads the records at positions; a record that is not in Redis
// (kept only in the archive past the record TTL, or lost with Redis' data
// until reindex restores it) comes back as an Item with a zero Record.
func (s *Store) docs(ctx context.Context, pos []string) ([]exchange.Item, error) {
	out := make([]exchange.Item, len(pos))
	for i, p := range pos {
		out[i].Pos = p
	}
	if len(pos) == 0 {
		return out, nil
	}
	err := s.eachDoc(ctx, pos, func(i int, raw string) error {
		rec, err := s.records.DecodeString(raw)
		if err != nil {
			return fmt.Errorf("decode record: %w", err)
		}
		out[i].Record = rec
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachDoc calls fn with the stored bytes of each record at positions that is not
// gone: one MGET, or on a Cluster (where one MGET's keys must share a
// hash slot) a pipeline of GETs.
func (s *Store) eachDoc(ctx context.Context, pos []string, fn func(i int, raw string) error) error {
	if _, ok := s.cmd.(*goredis.ClusterClient); ok {
		cmds := make([]*goredis.StringCmd, len(pos))
		_, err := s.cmd.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, ps := range pos {
				cmds[i] = p.Get(ctx, s.docKey(exchange.PositionID(ps)))
			}
			return nil
		})
		if err != nil && !errors.Is(err, goredis.Nil) {
			return wrap(err)
		}
		for i, c := range cmds {
			raw, err := c.Result()
			if errors.Is(err, goredis.Nil) {
				continue
			} else if err != nil {
				return wrap(err)
			}
			if err := fn(i, raw); err != nil {
				return err
			}
		}
		return nil
	}
	keys := make([]string, len(pos))
	for i, ps := range pos {
		keys[i] = s.docKey(exchange.PositionID(ps))
	}
	vals, err := s.cmd.MGet(ctx, keys...).Result()
	if err != nil {
		return wrap(err)
	}
	for i, v := range vals {
		if raw, ok := v.(string); ok { // nil: gone
			if err := fn(i, raw); err != nil {
				return err
			}
		}
	}
	return nil
}

// A natural key's value is the holder's id once indexed, or
// "~<id>@<unix ms>.<µs>" while only claimed ("@<unix ms>" by gateways
// from before 2026-11-27).

// confirmScript makes a record the holder of a key no other indexed
// document holds, or that the revision it amends (ARGV[2]) holds.
var confirmScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if (not v) or v == ARGV[1] or string.sub(v, 1, 1) == '~' or (ARGV[2] ~= '' and v == ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1`)

// claimScript: ARGV = id, now, stale-before, now + 1 µs. Times are Unix
// milliseconds with the microseconds as a fraction ("1732700000123.456"):
// gateways from before, which wrote and compare whole milliseconds, read
// them alike (tonumber), and two attempts of one document claiming in one
// millisecond do not leave equal claims (see Release). A renewal that
// would write the value it found writes it a microsecond later instead.
// A claim in whole microseconds (gateways of a few builds: 1e14 and more,
// no fraction) is read as such.
// It returns the holder and 1 when it made the claim anew (0 when it
// renewed id's own).
var claimScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return {ARGV[1], 0} end
if v and string.sub(v, 1, 1) ~= '~' then return {v, 0} end
local made = 1
if v then
  local at = string.find(v, '@', 1, true)
  local holder = string.sub(v, 2, at - 1)
  local t = string.sub(v, at + 1)
  local n = tonumber(t) or 0
  if n >= 1e14 and not string.find(t, '.', 1, true) then n = n / 1000 end
  if holder ~= ARGV[1] and n >= tonumber(ARGV[3]) then return {holder, 0} end
  if holder == ARGV[1] then made = 0 end
end
local claim = '~' .. ARGV[1] .. '@' .. ARGV[2]
if claim == v then claim = '~' .. ARGV[1] .. '@' .. ARGV[4] end
redis.call('SET', KEYS[1], claim)
return {ARGV[1], made}`)

// claimTime is a claim's time as claimScript writes it.
func claimTime(t time.Time) string {
	us := t.UnixMicro()
	return fmt.Sprintf("%d.%03d", us/1000, us%1000)
}

// Claim reserves a natural key for id.
func (s *Store) Claim(ctx context.Context, key, id string, now, staleBefore time.Time) (string, bool, error) {
	var res *goredis.Cmd
	nat := s.natKey(key)
	if err := s.write(ctx, step{nat, func(p goredis.Pipeliner, eval evalFunc) {
		res = eval(claimScript, ctx, p, []string{nat}, id, claimTime(now), claimTime(staleBefore), claimTime(now.Add(time.Microsecond)))
	}}); err != nil {
		return "", false, err
	}
	out, err := res.Slice()
	if err != nil {
		return "", false, wrap(err)
	}
	if len(out) != 2 {
		return "", false, fmt.Errorf("redis: claim answered %v", out)
	}
	holder, _ := out[0].(string)
	made, _ := out[1].(int64)
	return holder, made == 1, nil
}

// releaseScript deletes a claim (ARGV[1]: "~<id>@<claimTime>") still there.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`)

// Release implements exchange.Index.
func (s *Store) Release(ctx context.Context, key, id string, now time.Time) error {
	nat := s.natKey(key)
	return s.write(ctx, step{nat, func(p goredis.Pipeliner, eval evalFunc) {
		eval(releaseScript, ctx, p, []string{nat}, "~"+id+"@"+claimTime(now))
	}})
}

// Lookup returns the indexed document holding a natural key.
func (s *Store) Lookup(ctx context.Context, key string) (string, error) {
	return exchange.IndexedHolder(s.Holder(ctx, key))
}

// Holder implements exchange.Index.
func (s *Store) Holder(ctx context.Context, key string) (string, time.Time, error) {
	v, err := s.cmd.Get(ctx, s.natKey(key)).Result()
	if err != nil {
		return "", time.Time{}, wrap(err)
	}
	rest, pending := strings.CutPrefix(v, "~")
	if !pending {
		return v, time.Time{}, nil
	}
	id, at, _ := strings.Cut(rest, "@")
	return id, parseClaimTime(at), nil
}

// parseClaimTime reads a claim's time as claimScript writes it (Unix ms,
// with the µs as a fraction), or as gateways from before wrote it (whole
// ms, or for a while whole µs: 1e14 and more). One that does not read is
// the Unix epoch, as claimScript reads it (tonumber(...) or 0): stale.
func parseClaimTime(v string) time.Time {
	ms, frac, _ := strings.Cut(v, ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.UnixMicro(0)
	}
	if n >= 1e14 && frac == "" {
		return time.UnixMicro(n)
	}
	us := n * 1000
	if frac != "" {
		f, err := strconv.Atoi((frac + "000")[:3])
		if err != nil {
			return time.UnixMicro(0)
		}
		us += int64(f)
	}
	return time.UnixMicro(us)
}

// FlushForTest deletes every key of this store's prefix (on every master
// of a cluster). Tests use it to act out Redis restarting empty.
func (s *Store) FlushForTest(ctx context.Context) error {
	flush := func(ctx context.Context, c goredis.Cmdable) error {
		iter := c.Scan(ctx, 0, s.Prefix+":*", 1000).Iterator()
		for iter.Next(ctx) {
			if err := c.Del(ctx, iter.Val()).Err(); err != nil {
				return err
			}
		}
		return iter.Err()
	}
	if cc, ok := s.cmd.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return flush(ctx, c) })
	}
	return flush(ctx, s.cmd)
}

// Contains reports whether a list holds an entry at pos (in Redis, or in
// a segment of the list).
func (s *Store) Contains(ctx context.Context, list, pos string) (bool, error) {
	if pos >= "~" {
		return false, nil // a segment's member, not an entry
	}
	_, err := s.cmd.ZScore(ctx, s.listKey(list), pos).Result()
	if errors.Is(err, goredis.Nil) {
		if s.compacting(list) {
			return s.inSegments(ctx, list, pos)
		}
		return false, nil
	}
	return err == nil, wrap(err)
}
