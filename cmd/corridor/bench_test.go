package main

import (
	"bytes"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/landsea/corridor/internal/testenv"
)

// BenchmarkSubmitHTTP submits tracking events over real HTTP to a real
// gateway, from parallel clients, on the embedded backend and on Redis +
// MinIO: the whole path, archive and delivery included.
func BenchmarkSubmitHTTP(b *testing.B) {
	b.Run("Embedded", func(b *testing.B) { benchSubmit(b, storageFlags{Data: b.TempDir()}) })
	b.Run("RedisMinIO", func(b *testing.B) {
		s3 := testenv.MinIO(b)
		benchSubmit(b, storageFlags{Data: b.TempDir(), RedisURL: testenv.RedisURL(b), RedisPrefix: testenv.Prefix(),
			S3Endpoint: s3.Endpoint, S3Bucket: "bench-" + testenv.Prefix(), S3AccessKey: s3.AccessKey, S3SecretKey: s3.SecretKey})
	})
}

var benchSeq atomic.Int64

func benchSubmit(b *testing.B, storage storageFlags) {
	_, base, stop := gateway(b, storage)
	defer stop()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := benchSeq.Add(1)
			body := fmt.Appendf(nil, `{"eventID":"bench-%012d","eventType":"EQUIPMENT","eventClassifierCode":"ACT","eventCode":"GTIN",
"eventDateTime":"2026-11-05T16:10:00+08:00","eventLocation":{"UNLocationCode":"CNCKG"},"publisher":"cq-rail",
"billReference":"CQNL2026000187","containerNumber":"CSQU3054383"}`, n)
			req, _ := http.NewRequest("POST", base+"/v1/documents/tracking-event", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key("cq-rail"))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
