package redis

import goredis "github.com/redis/go-redis/v9"

// AddHook adds a hook to the client of short commands, for tests that
// count what the store sends.
func (s *Store) AddHook(h goredis.Hook) { s.cmd.AddHook(h) }
