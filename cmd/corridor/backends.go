package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/landsea/corridor/adapters/routing"
	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/storage/local"
	"github.com/landsea/corridor/storage/redis"
	"github.com/landsea/corridor/storage/s3"
)

// storageFlags choose the backends: Redis for queues and indexes when
// --redis-url (one server), --redis-sentinels with --redis-master, or
// --redis-cluster is set, S3 for the archive and parties when --s3-endpoint is
// set, and the embedded store in --data for whatever is not.
type storageFlags struct {
	Data              string
	RedisURL          string
	RedisSentinels    []string
	RedisMaster       string
	RedisCluster      []string
	RedisPassword     string
	RedisWaitReplicas int
	RedisPrefix       string
	RedisDedupe       time.Duration
	RedisRecordTTL    time.Duration
	RedisCompactAfter time.Duration
	S3Endpoint        string
	S3Bucket          string
	S3AccessKey       string
	S3SecretKey       string
	S3Secure          bool
	VisibilityTimeout time.Duration
	// WritesNoDocuments: the command indexes and queues nothing (parties),
	// so it records none of the settings the gateways share on Redis.
	WritesNoDocuments bool
	// NoDefaults: the command (reindex) does not choose a shared setting
	// neither given nor recorded on Redis.
	NoDefaults bool
	flags      *pflag.FlagSet // nil: every field counts as given
}

func (f *storageFlags) register(fs *pflag.FlagSet) {
	f.flags = fs
	fs.StringVar(&f.Data, "data", "data", "folder of the embedded backend (and of the receipt key)")
	fs.StringVar(&f.RedisURL, "redis-url", "", "Redis for queues and indexes, e.g. redis://127.0.0.1:6379/0 (empty: embedded)")
	fs.StringSliceVar(&f.RedisSentinels, "redis-sentinels", nil, "Redis Sentinels (host:port,...) watching --redis-master, instead of --redis-url")
	fs.StringVar(&f.RedisMaster, "redis-master", "", "name of the master the Redis Sentinels watch")
	fs.StringSliceVar(&f.RedisCluster, "redis-cluster", nil, "some nodes (host:port,...) of a Redis Cluster, instead of --redis-url")
	fs.StringVar(&f.RedisPassword, "redis-password", "", "password of the servers found through --redis-sentinels or --redis-cluster (with --redis-url, put it in the URL)")
	fs.IntVar(&f.RedisWaitReplicas, "redis-wait-replicas", 0, "acknowledge a write only once this many Redis replicas have it (WAIT, at most 1s; on Cluster, on each master written): 1 keeps what a promoted replica holds complete")
	fs.StringVar(&f.RedisPrefix, "redis-prefix", "corridor", "prefix of every Redis key, so corridors can share a server")
	fs.DurationVar(&f.RedisDedupe, "redis-dedupe-window", redis.DefaultDedupeWindow, "how long after a document was received Redis remembers its acked messages, so that it is not queued twice; then they take no memory (a submission retried later only gets its receipt); at least 1m, the same for every gateway on one Redis (left out: the one the first gateway recorded there, else 1h)")
	fs.DurationVar(&f.RedisRecordTTL, "redis-record-ttl", 0, "keep a document's index record in Redis only this long after it was received, then read it from the archive when a view lists it (its list entries and natural keys stay in Redis): bounds what each document costs Redis to ~270 bytes; at least --redis-dedupe-window; 0 keeps records; the same for every gateway on one Redis (left out: the one the first gateway recorded there, else 0)")
	fs.DurationVar(&f.RedisCompactAfter, "redis-compact-after", 0, "move the entries of a shipment's timeline out of Redis this long after their events' time, into segments beside the archive (views read them there, cached): what a tracking event costs Redis for good is then none of its own; at least 1m (e.g. the --redis-record-ttl); 0, the default, moves none (segments moved before are still read); turn it on only once every gateway on the Redis runs a build that reads segments")
	fs.StringVar(&f.S3Endpoint, "s3-endpoint", "", "S3 or MinIO host:port for the archive and parties (empty: embedded)")
	fs.StringVar(&f.S3Bucket, "s3-bucket", "corridor", "S3 bucket")
	fs.StringVar(&f.S3AccessKey, "s3-access-key", "", "S3 access key")
	fs.StringVar(&f.S3SecretKey, "s3-secret-key", "", "S3 secret key")
	fs.BoolVar(&f.S3Secure, "s3-secure", false, "use https to reach S3")
	fs.DurationVar(&f.VisibilityTimeout, "visibility-timeout", 30*time.Second, "how long a pulled, unacked message waits before it is delivered again")
}

// envDefaults lets CORRIDOR_<FLAG> set any flag the command line did not,
// except the flags whose names start with one of skip.
func envDefaults(cmd *cobra.Command, skip ...string) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		name := "CORRIDOR_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		skipped := slices.ContainsFunc(skip, func(p string) bool { return strings.HasPrefix(f.Name, p) })
		if v, ok := os.LookupEnv(name); ok && !f.Changed && f.Name != "help" && !skipped {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
			f.Changed = true // given, as on the command line
		}
	})
	return errors.Join(errs...)
}

// given reports whether a flag was set, on the command line or by
// CORRIDOR_<FLAG>.
func (f *storageFlags) given(name string) bool {
	if f.flags == nil {
		return true
	}
	fl := f.flags.Lookup(name)
	return fl != nil && fl.Changed
}

type backends struct {
	archive exchange.Archive
	queue   exchange.Queue
	index   exchange.Index
	parties exchange.Parties
	outbox  exchange.Outbox
	// redis is set when queues and indexes are on Redis: limits and
	// revocations are then shared by every gateway on it.
	redis   *redis.Store
	closers []func() error // in the order to close them
	desc    string
}

func (f *storageFlags) open(ctx context.Context) (*backends, error) {
	b := &backends{}
	var loc *local.Store
	embedded := func() (*local.Store, error) {
		if loc != nil {
			return loc, nil
		}
		loc = local.New(f.Data)
		loc.VisibilityTimeout = f.VisibilityTimeout
		if err := loc.Open(); err != nil {
			return nil, err
		}
		return loc, nil
	}
	var descs []string
	redisDesc, err := f.redisMode()
	if err != nil {
		return nil, err
	}
	if redisDesc != "" {
		r := redis.New(f.RedisURL)
		r.Sentinels, r.MasterName, r.Cluster, r.Password = f.RedisSentinels, f.RedisMaster, f.RedisCluster, f.RedisPassword
		r.WaitReplicas = f.RedisWaitReplicas
		r.VisibilityTimeout = f.VisibilityTimeout
		if f.RedisDedupe != 0 { // 0: the default (a caller that did not register the flags)
			r.DedupeWindow = f.RedisDedupe
		}
		r.RecordTTL = f.RedisRecordTTL
		r.AdoptWindow, r.AdoptRecordTTL = !f.given("redis-dedupe-window"), !f.given("redis-record-ttl")
		r.WritesNoDocuments, r.NoDefaults = f.WritesNoDocuments, f.NoDefaults
		if f.RedisPrefix != "" {
			r.Prefix = f.RedisPrefix
		}
		if err := r.Open(ctx); err != nil {
			return nil, fmt.Errorf("open redis: %w", err)
		}
		b.queue, b.index, b.outbox, b.redis = r, r, r, r
		b.closers = append(b.closers, r.Close)
		descs = append(descs, "queues and indexes on "+redisDesc)
	} else {
		l, err := embedded()
		if err != nil {
			return nil, err
		}
		b.queue, b.index, b.outbox = l, l, l
		descs = append(descs, "queues and indexes embedded in "+f.Data)
	}
	if f.S3Endpoint != "" {
		s := s3.New(f.S3Endpoint, f.S3Bucket, f.S3AccessKey, f.S3SecretKey)
		s.Secure = f.S3Secure
		if err := s.Open(ctx); err != nil {
			b.close()
			return nil, fmt.Errorf("open s3: %w", err)
		}
		b.archive, b.parties = s, s
		b.closers = append(b.closers, s.Close)
		descs = append(descs, "archive and parties on S3 "+f.S3Endpoint+"/"+f.S3Bucket)
	} else {
		l, err := embedded()
		if err != nil {
			b.close()
			return nil, err
		}
		b.archive, b.parties = l, l
		descs = append(descs, "archive and parties embedded in "+f.Data)
	}
	if loc != nil {
		b.closers = append(b.closers, loc.Close)
	}
	if err := f.compaction(b); err != nil {
		b.close()
		return nil, err
	}
	b.desc = strings.Join(descs, "; ")
	return b, nil
}

// compaction sets how the Redis store moves timelines out: into the
// archive's blobs, after --redis-compact-after (0: not at all). Segments
// moved out before (by this gateway, or another) are read whatever the
// flag says.
func (f *storageFlags) compaction(b *backends) error {
	after := f.RedisCompactAfter
	switch {
	case after != 0 && b.redis == nil:
		return errors.New("--redis-compact-after needs Redis (--redis-url, --redis-sentinels or --redis-cluster)")
	case after < 0 || after != 0 && after < time.Minute:
		return fmt.Errorf("--redis-compact-after %s: at least 1m (or 0: off)", after)
	case b.redis == nil:
		return nil
	}
	if blobs, ok := b.archive.(exchange.Blobs); ok {
		b.redis.Segments, b.redis.CompactAfter = blobs, after
	}
	return nil
}

// redisMode checks that at most one way to reach Redis is set and names
// it ("" when none is: the embedded store).
func (f *storageFlags) redisMode() (string, error) {
	n := 0
	for _, set := range []bool{f.RedisURL != "", len(f.RedisSentinels) > 0, len(f.RedisCluster) > 0} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return "", errors.New("choose one of --redis-url, --redis-sentinels and --redis-cluster")
	case len(f.RedisSentinels) > 0 && f.RedisMaster == "":
		return "", errors.New("--redis-sentinels needs --redis-master")
	case f.RedisMaster != "" && len(f.RedisSentinels) == 0:
		return "", errors.New("--redis-master needs --redis-sentinels")
	case f.RedisURL != "":
		return "Redis", nil
	case len(f.RedisSentinels) > 0:
		return "Redis (master " + f.RedisMaster + " through Sentinel)", nil
	case len(f.RedisCluster) > 0:
		return "Redis Cluster", nil
	}
	return "", nil
}

func (b *backends) close() error {
	var errs []error
	for _, c := range b.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// service is a service over the backends with the corridor's routing
// rules (serve replaces them with --routing), its outbox, and on Redis
// the revocations it announces to the other gateways.
func (b *backends) service(signer *exchange.Signer, log *slog.Logger) *exchange.Service {
	svc := exchange.NewService(b.archive, b.queue, b.index, b.parties, signer, log)
	svc.SetRules(routing.Default())
	svc.SetOutbox(b.outbox)
	if b.redis != nil {
		svc.SetRevocations(b.redis)
	}
	return svc
}
