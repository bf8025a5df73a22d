package redis

import (
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// AddHook adds a hook to the client of short commands, for tests that
// count what the store sends.
func (s *Store) AddHook(h goredis.Hook) { s.cmd.AddHook(h) }

// Cmd is the client of short commands, for tests that read the store's keys.
func (s *Store) Cmd() goredis.UniversalClient { return s.cmd }

// InboxKeys, DocKey and ListKey name the store's keys, for those tests.
func (s *Store) InboxKeys(party string) []string { return s.inboxKeys(party) }
func (s *Store) DocKey(id string) string         { return s.docKey(id) }
func (s *Store) ListKey(list string) string      { return s.listKey(list) }

// What the tests of packed records and of the dedupe window look at.
var (
	PackRecord   = packRecord
	UnpackRecord = unpackRecord
	RecordDictV1 = recordDictV1
	MarkSlack    = markSlack
)

// SetSegmentSize makes the store's segments hold at most n entries.
func (s *Store) SetSegmentSize(n int) { s.segmentSize = n }

// SegmentObjectOf names the object of a list's segment member.
func (s *Store) SegmentObjectOf(list, member string) string {
	f := strings.Split(member, "|")
	return s.segmentObject(list, f[len(f)-1])
}
