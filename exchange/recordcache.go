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
	seed maphash.Seed
	lru  *lru.Cache[uint64, *cachedRecord] // by a hash of the bytes
}

type cachedRecord struct {
	raw string
	rec Record
}

// NewRecordCache returns a cache of up to size decoded records.
func NewRecordCache(size int) *RecordCache {
	c, err := lru.New[uint64, *cachedRecord](size)
	if err != nil {
		panic(err) // size <= 0: a programming error
	}
	return &RecordCache{seed: maphash.MakeSeed(), lru: c}
}

// Decode unmarshals a record as json.Unmarshal does. A nil cache decodes
// every time.
func (c *RecordCache) Decode(raw []byte) (Record, error) {
	var rec Record
	if c == nil {
		return rec, json.Unmarshal(raw, &rec)
	}
	h := maphash.Bytes(c.seed, raw)
	if e, ok := c.lru.Get(h); ok && e.raw == string(raw) {
		return e.rec.clone(), nil
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return rec, err
	}
	c.lru.Add(h, &cachedRecord{raw: string(raw), rec: rec.clone()})
	return rec, nil
}

// clone returns a copy of r that shares no slice, map or pointer with it
// (strings and time zones are immutable and stay shared).
func (r Record) clone() Record {
	r.Recipients = slices.Clone(r.Recipients)
	r.RoutedBy = slices.Clone(r.RoutedBy)
	r.Refs = slices.Clone(r.Refs)
	r.Keys = slices.Clone(r.Keys)
	r.Facts = maps.Clone(r.Facts)
	r.Shipments = slices.Clone(r.Shipments)
	r.Members = slices.Clone(r.Members)
	r.Deciders = slices.Clone(r.Deciders)
	if r.Plan != nil {
		p := *r.Plan
		p.Legs = slices.Clone(p.Legs)
		p.Containers = slices.Clone(p.Containers)
		r.Plan = &p
	}
	return r
}
