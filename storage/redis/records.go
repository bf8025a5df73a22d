package redis

import (
	_ "embed"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// The index's records are kept in Redis as zstd frames packed with a
// dictionary: a record is mostly the same names and values as the next
// (its JSON is ~840 bytes for a tracking event, ~300 packed), and the index
// holds one per document, so this is most of what a document costs Redis.
// A frame names its dictionary by id; records written before packing
// (plain JSON, starting with '{') are read as they are.
//
// A dictionary is never changed once released: records packed with it stay
// in Redis until reindex rewrites them. A new one takes a new id, and the
// decoder keeps every earlier one (TestRecordDictionaryIsFrozen).

// recordDictV1 is ten records of the demo corridor, one of each type, the
// tracking event last (the closest, so the cheapest to refer to).
//
//go:embed records-v1.dict
var recordDictV1 []byte

const recordDictV1ID = 1

var (
	recordEncoder = must(zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderDictRaw(recordDictV1ID, recordDictV1), zstd.WithEncoderCRC(false)))
	recordDecoder = must(zstd.NewReader(nil, zstd.WithDecoderDictRaw(recordDictV1ID, recordDictV1),
		zstd.WithDecoderMaxMemory(maxRecordBytes), zstd.WithDecoderConcurrency(0)))
)

// maxRecordBytes bounds a record: packRecord refuses a larger one (which
// could not be read back), and a frame never unpacks to more.
const maxRecordBytes = 16 << 20

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// packRecord packs a record's JSON for Redis.
func packRecord(raw []byte) ([]byte, error) {
	if len(raw) > maxRecordBytes {
		return nil, fmt.Errorf("index record of %d bytes: at most %d", len(raw), maxRecordBytes)
	}
	return recordEncoder.EncodeAll(raw, make([]byte, 0, len(raw)/2)), nil
}

// unpackRecord returns a record's JSON from what Redis holds: a packed
// record, or one written as plain JSON before records were packed.
func unpackRecord(b []byte) ([]byte, error) {
	if len(b) > 0 && b[0] == '{' {
		return b, nil
	}
	raw, err := recordDecoder.DecodeAll(b, nil)
	if err != nil {
		return nil, fmt.Errorf("unpack index record: %w", err)
	}
	return raw, nil
}
