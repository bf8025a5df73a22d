package exchange

import (
	"encoding/json"
	"hash/maphash"
	"maps"
	"slices"

	lru "github.com/hashicorp/golang-lru/v2"
)

// RecordCache decodes the records an index stores, remembering those it
// decoded last. Every submission to a shipment reads its whole document
// graph from the index, and decoding the JSON was most of that read's
// cost; the bytes are still read each time, so a record changed by
// another gateway is decoded again. A record comes out as a deep copy:
// callers may change what they get.
type RecordCache struct {
	seed   maphash.Seed
	lru    *lru.Cache[uint64, *cachedRecord] // by a hash of the bytes
	unpack func([]byte) ([]byte, error)
}

type cachedRecord struct {
	raw string
	rec Record
}

// NewRecordCache returns a cache of up to size decoded records. An index
// that stores records in a form of its own (packed) gives the unpack that
// returns their JSON; with nil they are JSON. Records are cached by the
// bytes stored.
func NewRecordCache(size int, unpack func([]byte) ([]byte, error)) *RecordCache {
	c, err := lru.New[uint64, *cachedRecord](size)
	if err != nil {
		panic(err) // size <= 0: a programming error
	}
	return &RecordCache{seed: maphash.MakeSeed(), lru: c, unpack: unpack}
}

// Decode unmarshals a stored record as json.Unmarshal does its JSON. A nil
// cache decodes every time.
func (c *RecordCache) Decode(raw []byte) (Record, error) {
	if c == nil {
		return decodeRecord(raw)
	}
	h := maphash.Bytes(c.seed, raw)
	if e, ok := c.lru.Get(h); ok && e.raw == string(raw) {
		return e.rec.clone(), nil
	}
	rec, err := c.decode(raw)
	if err != nil {
		return rec, err
	}
	c.lru.Add(h, &cachedRecord{raw: string(raw), rec: rec.clone()})
	return rec, nil
}

// DecodeString is Decode for a record held as a string (as go-redis reads
// the values of an MGET): a cached one is found without copying it.
func (c *RecordCache) DecodeString(raw string) (Record, error) {
	if c == nil {
		return decodeRecord([]byte(raw))
	}
	h := maphash.String(c.seed, raw)
	if e, ok := c.lru.Get(h); ok && e.raw == raw {
		return e.rec.clone(), nil
	}
	rec, err := c.decode([]byte(raw))
	if err != nil {
		return rec, err
	}
	c.lru.Add(h, &cachedRecord{raw: raw, rec: rec.clone()})
	return rec, nil
}

// decode unpacks a stored record, if the index packs them, and decodes it.
func (c *RecordCache) decode(stored []byte) (Record, error) {
	if c.unpack == nil {
		return decodeRecord(stored)
	}
	raw, err := c.unpack(stored)
	if err != nil {
		return Record{}, err
	}
	return decodeRecord(raw)
}

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
