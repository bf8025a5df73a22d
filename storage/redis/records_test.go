package redis_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/storage/redis"
)

// A released dictionary never changes: records packed with it are in
// Redis until reindex rewrites them. A frame packed with v1 (the record of
// exchange/testdata, packed when v1 was released) must still unpack.
func TestRecordDictionaryIsFrozen(t *testing.T) {
	sum := sha256.Sum256(redis.RecordDictV1)
	if got := hex.EncodeToString(sum[:]); got != "20a2baa9e051f8f304485eb9541b2c2a342d8f850c35b517faf624b047e4be5e" {
		t.Fatalf("records-v1.dict changed (sha256 %s): give a new dictionary a new id and keep this one", got)
	}
	want, packed := goldenRecord(t)
	got, err := redis.UnpackRecord(packed)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("unpacked %q, %v; want the record of exchange/testdata", got, err)
	}
	if len(packed) > len(want)/3 {
		t.Errorf("packed %d bytes of %d: the dictionary no longer helps", len(packed), len(want))
	}
}

func TestUnpackRefusesGarbage(t *testing.T) {
	for _, b := range [][]byte{[]byte("x"), {0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0}} {
		if raw, err := redis.UnpackRecord(b); err == nil {
			t.Errorf("unpack %x = %q, want an error", b, raw)
		}
	}
}

// Records are stored packed, and a record stored as plain JSON (by a
// gateway before packing) is still read, by Doc and by Page.
func TestRecordsPackedAndPlainRead(t *testing.T) {
	ctx := context.Background()
	s := open(t, time.Minute)
	var plain exchange.Record
	raw, _ := os.ReadFile("../../exchange/testdata/record-v2.json")
	if err := json.Unmarshal(raw, &plain); err != nil {
		t.Fatal(err)
	}
	packed := plain
	packed.ID, packed.ReceivedAt = "packedrecord0000000000000a", plain.ReceivedAt.Add(time.Second)
	if err := s.Add(ctx, packed, []exchange.Entry{{List: "l", Pos: exchange.Position(packed.ReceivedAt, packed.ID)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Cmd().Set(ctx, s.DocKey(plain.ID), bytes.TrimSpace(raw), 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Cmd().ZAdd(ctx, s.ListKey("l"), goredis.Z{Member: exchange.Position(plain.ReceivedAt, plain.ID)}).Err(); err != nil {
		t.Fatal(err)
	}
	stored, err := s.Cmd().Get(ctx, s.DocKey(packed.ID)).Bytes()
	if err != nil || !bytes.HasPrefix(stored, []byte{0x28, 0xb5, 0x2f, 0xfd}) || len(stored) > len(raw)/2 {
		t.Fatalf("stored %d bytes (%x...), %v: want a zstd frame under half the JSON's %d", len(stored), stored[:min(4, len(stored))], err, len(raw))
	}
	for _, want := range []exchange.Record{plain, packed} {
		got, err := s.Doc(ctx, want.ID)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Doc(%s) = %+v, %v; want %+v", want.ID, got, err, want)
		}
	}
	items, err := s.Page(ctx, "l", "", 10, false)
	if err != nil || len(items) != 2 || !reflect.DeepEqual(items[0].Record, plain) || !reflect.DeepEqual(items[1].Record, packed) {
		t.Fatalf("Page = %+v, %v; want the plain record, then the packed one", items, err)
	}
}

// Any bytes from Redis unpack to a record's JSON or an error, never a
// panic; any JSON packs and unpacks to itself.
func FuzzRecordPacking(f *testing.F) {
	raw, packed := goldenRecord(f)
	f.Add(raw)
	f.Add(packed)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = redis.UnpackRecord(b)
		p, err := redis.PackRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := redis.UnpackRecord(p); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("packed and unpacked %q: %q, %v", b, got, err)
		}
	})
}

// goldenRecord returns the record of exchange/testdata (its JSON) and the
// frame it was packed to when dictionary v1 was released.
func goldenRecord(tb testing.TB) (raw, packed []byte) {
	tb.Helper()
	raw, err := os.ReadFile("../../exchange/testdata/record-v2.json")
	if err != nil {
		tb.Fatal(err)
	}
	packed, err = os.ReadFile("testdata/record-v2.zst")
	if err != nil {
		tb.Fatal(err)
	}
	return bytes.TrimSpace(raw), packed
}
