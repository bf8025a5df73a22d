package exchange

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// Reindex files every archived record in the index again, and with
// requeue queues each received since since (all when zero) again for its
// recipients, oldest first (a queue that still knows a document skips it;
// one that forgets delivers again what it forgot). The archive is the
// ledger: after Redis lost its data this rebuilds shipments, grants and
// inboxes. step is called once per record, for progress.
func (s *Service) Reindex(ctx context.Context, requeue bool, since time.Time, step func()) (int, error) {
	n := 0
	var queued, old, revisions []Record
	file := func(rec Record) error {
		if err := s.Index.Add(ctx, rec, Entries(rec)); err != nil {
			return fmt.Errorf("index %s: %w", rec.ID, err)
		}
		if requeue && len(rec.Recipients) > 0 && !rec.ReceivedAt.Before(since) {
			queued = append(queued, Record{Receipt: rec.Receipt, Shipments: rec.Shipments}) // what a message needs (Ref: push's lanes)
		}
		return nil
	}
	err := s.Archive.Walk(ctx, func(rec Record) error {
		n++
		step()
		switch {
		case rec.Format < RecordFormat:
			old = append(old, rec) // upgraded below, once the bills they name are indexed
		case rec.PreviousID != "":
			revisions = append(revisions, rec) // below, in order: each takes its number from the one it amends
		default:
			return file(rec)
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	slices.SortStableFunc(revisions, func(a, b Record) int { return cmp.Compare(a.Revision, b.Revision) })
	for _, rec := range revisions {
		if err := file(rec); err != nil {
			return n, err
		}
	}
	byTime := func(a, b Record) int { return a.ReceivedAt.Compare(b.ReceivedAt) }
	slices.SortStableFunc(old, byTime)
	for _, rec := range old {
		up, err := s.upgrade(ctx, rec)
		if err != nil {
			return n, fmt.Errorf("upgrade %s: %w", rec.ID, err)
		}
		if err := file(up); err != nil {
			return n, err
		}
	}
	// The archive walks in no set order; inboxes deliver oldest first.
	slices.SortStableFunc(queued, byTime)
	for _, rec := range queued {
		if err := s.Queue.Enqueue(ctx, MessageOf(rec), rec.Recipients...); err != nil {
			return n, fmt.Errorf("queue %s: %w", rec.ID, err)
		}
	}
	return n, nil
}

// upgrade reads a record archived before shipments were linked (format
// 0) as if it were written now: its shipments, members, numbers and plan
// are worked out again from its bytes, against the bills indexed before
// it. The archive itself is never rewritten.
func (s *Service) upgrade(ctx context.Context, rec Record) (Record, error) {
	ctx = context.WithValue(ctx, upgradingKey{}, true)
	rt, ok := routes[rec.Type]
	if !ok {
		return rec, nil
	}
	body, err := s.Archive.Body(ctx, rec.ID)
	if err != nil {
		return rec, err
	}
	doc, err := s.Validate(ctx, rec.Type, rec.SchemaVersion, body)
	if err != nil {
		return rec, err
	}
	f := doc.Fields
	rec.Format, rec.Refs, rec.Members, rec.Shipments = RecordFormat, nil, nil, nil
	for _, m := range rt.members {
		rec.Members = append(rec.Members, values(f, m.path)...)
	}
	rt.derive(f, &rec)
	switch {
	case rec.Type == TypeOneBill:
		openBill(f, &rec)
	case rt.ship != nil:
		for _, path := range rt.ship.paths {
			for _, v := range values(f, path) {
				bill, err := s.findBill(ctx, v, rt.ship.prefixes)
				if err != nil || len(bill.Shipments) == 0 {
					continue
				}
				rec.Shipments = append(rec.Shipments, bill.Shipments...)
				if st, err := s.loadShipment(ctx, bill.Shipments[0].Ref); err == nil && rec.Type == TypeEvent &&
					milestone(rec.Facts, rec.Sender, st.bill.Plan, st.bill.Sender) {
					rec.Facts["milestone"] = "true"
				}
			}
		}
	case rt.ref != nil && rt.ref.inheritShipments:
		if decl, err := s.referenced(ctx, rt.ref.prefix+NormalizeRef(first(f, rt.ref.path))); err == nil {
			rec.Shipments = decl.Shipments
		}
	}
	return rec, nil
}
