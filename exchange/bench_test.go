package exchange_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/storage/storagetest"
)

// BenchmarkSubmit measures the whole submit path on the embedded backend:
// validation, archive (two fsynced files), index and one inbox per recipient,
// for a manifest of the demo one bill.
func BenchmarkSubmit(b *testing.B) {
	ctx := context.Background()
	store := storagetest.Local(b)
	svc, _ := benchDemo(b, store, store) // the manifest's bill must be on file
	rail, _ := svc.Parties.Party(ctx, "cq-rail")
	i := 0
	for b.Loop() {
		i++
		body := fmt.Appendf(nil, `{"manifestNumber":"X8017-%08d","manifestType":"LOADING","carrier":"cq-rail","customsAuthority":"cq-customs",
"modeOfTransport":"RAIL","trainNumber":"X8017","placeOfDeparture":{"UNLocationCode":"CNCKG"},"placeOfArrival":{"UNLocationCode":"CNQZH"},
"plannedDeparture":"2026-11-06T08:00:00+08:00","plannedArrival":"2026-11-08T10:00:00+08:00",
"bills":[{"transportDocumentReference":"CQNL2026000187","containerNumbers":["CSQU3054383"],"numberOfPackages":500,"grossWeight":12500.5}]}`, i)
		if _, _, err := svc.Submit(ctx, rail, exchange.Submission{Type: "cargo-manifest", Body: body}); err != nil {
			b.Fatal(err)
		}
	}
}
