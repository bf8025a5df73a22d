package exchange

import (
	"encoding/json"
	"hash/maphash"
	"maps"
	"slices"
)

// RecordCache decodes the records an index stores, remembering those it
// decoded last. Every submission to a shipment reads its whole document
// graph from the index, and decoding the JSON was most of that read's
// cost; the bytes are still read each time, so a record changed by
// another gateway is decoded again. A record comes out as a deep copy:
// callers may change what they get. It holds up to a budget of bytes (as
// recordCost reckons them), not of records: a manifest's record may be a
// hundred times a response's; and a record nobody read for cacheIdle goes.
type RecordCache struct {
	seed   maphash.Seed
	lru    *byteLRU[uint64, *cachedRecord] // by a hash of the bytes
	unpack func([]byte) ([]byte, error)
}

type cachedRecord struct {
	raw string
	rec Record
}

// NewRecordCache returns a cache of decoded records holding about
// maxBytes: each record is reckoned as the bytes stored, which it keeps,
// and recordCost of its JSON; a record reckoned larger than maxBytes is
// decoded every time. An index that stores records in a form of its own
// (packed) gives the unpack that returns their JSON; with nil they are
// JSON. Records are cached by the bytes stored.
func NewRecordCache(maxBytes int, unpack func([]byte) ([]byte, error)) *RecordCache {
	return &RecordCache{seed: maphash.MakeSeed(), lru: newByteLRU[uint64, *cachedRecord](maxBytes, cacheIdle), unpack: unpack}
}

// Decode unmarshals a stored record as json.Unmarshal does its JSON. A nil
// cache decodes every time.
func (c *RecordCache) Decode(raw []byte) (Record, error) {
	if c == nil {
		return decodeRecord(raw)
	}
	h := maphash.Bytes(c.seed, raw)
	if e, ok := c.lru.get(h); ok && e.raw == string(raw) {
		return e.rec.clone(), nil
	}
	rec, n, err := c.decode(raw)
	if err != nil {
		return rec, err
	}
	c.lru.add(h, &cachedRecord{raw: string(raw), rec: rec.clone()}, len(raw)+recordCost(n))
	return rec, nil
}

// DecodeString is Decode for a record held as a string (as go-redis reads
// the values of an MGET): a cached one is found without copying it.
func (c *RecordCache) DecodeString(raw string) (Record, error) {
	if c == nil {
		return decodeRecord([]byte(raw))
	}
	h := maphash.String(c.seed, raw)
	if e, ok := c.lru.get(h); ok && e.raw == raw {
		return e.rec.clone(), nil
	}
	rec, n, err := c.decode([]byte(raw))
	if err != nil {
		return rec, err
	}
	c.lru.add(h, &cachedRecord{raw: raw, rec: rec.clone()}, len(raw)+recordCost(n))
	return rec, nil
}

// decode unpacks a stored record, if the index packs them, and decodes it;
// it returns the length of its JSON too.
func (c *RecordCache) decode(stored []byte) (Record, int, error) {
	if c.unpack == nil {
		rec, err := decodeRecord(stored)
		return rec, len(stored), err
	}
	raw, err := c.unpack(stored)
	if err != nil {
		return Record{}, 0, err
	}
	rec, err := decodeRecord(raw)
	return rec, len(raw), err
}

// recordCost reckons what a record whose JSON is n bytes long takes in
// memory once decoded, with the entry that holds it in a cache: 2.75
// bytes a byte of JSON, and 512 bytes more. Measured in Go 1.26 by
// TestRecordCacheCostCoversTheHeap (the heap's growth per record held,
// decoded as the caches hold them), all told: 1.8 to 2.7 bytes a byte for
// a record of each type in the demo corridor (600 to 1,300 bytes of JSON,
// so the fixed part weighs), 2.4 for a one bill of 1,000 containers (29 KB
// of JSON: each number twice, in refs and in the plan, 32 bytes decoded
// for 14 of JSON), 1.3 to 1.7 for a manifest of 300 bills (29 KB). It errs
// high, by 10 to 75%, so that a cache's budget bounds what it holds (it
// would err low for records of many strings of a few bytes each: ours
// hold ids and numbers).
func recordCost(n int) int { return n*11/4 + 512 }

// decodeRecord is json.Unmarshal into a new Record (kept out of Decode,
// where the Record it takes the address of would be on the heap on every
// call, hits included).
func decodeRecord(raw []byte) (Record, error) {
	var rec Record
	err := json.Unmarshal(raw, &rec)
	return rec, err
}

// clone returns a copy of r that shares no slice, map or pointer with it
// (strings and time zones are immutable and stay shared). Its string
// slices are cut from one array, each with its capacity at its length, so
// an append to one moves it rather than overwrite the next.
func (r Record) clone() Record {
	n := len(r.Recipients) + len(r.RoutedBy) + len(r.Refs) + len(r.Keys) + len(r.Members) + len(r.Deciders)
	if r.Plan != nil {
		n += len(r.Plan.Containers)
	}
	strs := make([]string, 0, n)
	cut := func(s []string) []string {
		if s == nil {
			return nil
		}
		i := len(strs)
		strs = append(strs, s...)
		return strs[i:len(strs):len(strs)]
	}
	r.Recipients = cut(r.Recipients)
	r.RoutedBy = cut(r.RoutedBy)
	r.Refs = cut(r.Refs)
	r.Keys = cut(r.Keys)
	r.Members = cut(r.Members)
	r.Deciders = cut(r.Deciders)
	r.Facts = maps.Clone(r.Facts)
	r.Shipments = slices.Clone(r.Shipments)
	if r.Plan != nil {
		p := *r.Plan
		p.Legs = slices.Clone(p.Legs)
		p.Containers = cut(p.Containers)
		r.Plan = &p
	}
	return r
}
