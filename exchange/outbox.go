package exchange

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Outbox remembers the documents whose delivery has begun and not ended.
// Submit marks a document before its archive write and unmarks it once it
// is indexed, queued and cleared; a sweep finishes what a gateway that
// died in between left undone, so a document that reached the archive is
// delivered even if its sender never retries.
type Outbox interface {
	// Mark records that the document id is being delivered since at (a
	// document marked again takes the later time), and reports whether
	// it was marked already.
	Mark(ctx context.Context, id string, at time.Time) (was bool, err error)
	// Unmark forgets the document if it is still marked at markedAt, or
	// with a zero markedAt however it is marked; an id not marked is
	// ignored. (A sweep that gives up on an old mark must not take a
	// fresh one of a submission tried again meanwhile.)
	Unmark(ctx context.Context, id string, markedAt time.Time) error
	// Pending returns up to limit marked documents, marked before before,
	// oldest first.
	Pending(ctx context.Context, before time.Time, limit int) ([]Pending, error)
	// Marked reports whether a document is marked (an error wrapping
	// ErrUnavailable when the backend does not answer).
	Marked(ctx context.Context, id string) (bool, error)
}

// Pending is a document whose delivery has not been seen to end.
type Pending struct {
	ID    string
	Since time.Time
}

// SetOutbox makes Submit mark each document in o before archiving it; the
// sweeps (SweepOutbox) complete what was marked and never unmarked.
func (s *Service) SetOutbox(o Outbox) { s.outbox = o }

// sweepPage is how many pending documents one look-up of a sweep reads.
const sweepPage = 200

// SweepOutbox completes the delivery of every document marked before
// settle ago: an archived one is indexed, queued and cleared again (each
// step is idempotent, so a submission still in flight elsewhere loses
// nothing by it), then unmarked. One that never reached the archive is
// unmarked once ClaimTimeout has passed, when its submission has surely
// ended. It returns how many documents it delivered.
func (s *Service) SweepOutbox(ctx context.Context, settle time.Duration) (int, error) {
	if s.outbox == nil {
		return 0, nil
	}
	delivered := 0
	tried := map[string]bool{}
	var errs []error
	for {
		now := time.Now()
		page, err := s.outbox.Pending(ctx, now.Add(-settle), sweepPage)
		if err != nil {
			return delivered, errors.Join(append(errs, fmt.Errorf("read outbox: %w", err))...)
		}
		done := 0
		for _, p := range page {
			if tried[p.ID] {
				continue // left marked earlier in this sweep
			}
			tried[p.ID] = true
			delivered1, settled, err := s.sweepOne(ctx, p, now)
			if err != nil {
				errs = append(errs, fmt.Errorf("deliver %s: %w", p.ID, err))
				continue
			}
			if delivered1 {
				delivered++
			}
			if !settled {
				continue
			}
			if err := s.outbox.Unmark(ctx, p.ID, p.Since); err != nil {
				errs = append(errs, fmt.Errorf("unmark %s: %w", p.ID, err))
				continue
			}
			done++
		}
		if len(page) < sweepPage || done == 0 || ctx.Err() != nil {
			return delivered, errors.Join(errs...)
		}
	}
}

// sweepOne completes one pending delivery. delivered is true when the
// document was archived and is now delivered; settled when it may be
// unmarked: delivered, or never archived and too old to be still on its
// way. A document not archived whose submission may still be running is
// neither.
func (s *Service) sweepOne(ctx context.Context, p Pending, now time.Time) (delivered, settled bool, err error) {
	rec, err := s.Archive.Record(ctx, p.ID)
	if errors.Is(err, ErrNotFound) {
		return false, now.Sub(p.Since) > ClaimTimeout, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("read record: %w", err)
	}
	if err := s.complete(ctx, rec); err != nil {
		return false, false, err
	}
	s.Logger.InfoContext(ctx, "outbox: delivery completed", "id", rec.ID, "type", rec.Type, "sender", rec.Sender,
		"recipients", len(rec.Recipients), "pending_since", p.Since)
	return true, true, nil
}

// RunOutbox sweeps the outbox every interval until ctx ends, skipping
// documents marked less than interval ago (their submissions are most
// likely still running). Failures are logged and tried again next time.
func (s *Service) RunOutbox(ctx context.Context, interval time.Duration) {
	if s.outbox == nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.SweepOutbox(ctx, interval)
		if err != nil && ctx.Err() == nil {
			s.Logger.WarnContext(ctx, "outbox sweep", "delivered", n, "err", err)
		}
	}
}

// mark records a document in the outbox before it is archived, and
// reports whether it was marked already: by an attempt whose delivery has
// not ended, or by a retry running at the same time or failed after its
// mark (and on Redis by this mark itself, sent again after a lost reply).
func (s *Service) mark(ctx context.Context, id string) (bool, error) {
	if s.outbox == nil {
		return false, nil
	}
	was, err := s.outbox.Mark(ctx, id, time.Now())
	if err != nil {
		return false, fmt.Errorf("mark delivery pending: %w", err)
	}
	return was, nil
}

// unmark forgets a delivered document. If that fails the document stays
// marked, and a sweep delivers it again, which changes nothing (but for a
// queue that forgets, after its window: then its recipients get it twice).
func (s *Service) unmark(ctx context.Context, id string) {
	if s.outbox == nil {
		return
	}
	if err := s.outbox.Unmark(ctx, id, time.Time{}); err != nil {
		s.Logger.WarnContext(ctx, "outbox: unmark delivered document", "id", id, "err", err)
	}
}

func (s *Service) failpoint(point string) {
	if s.Failpoint != nil {
		s.Failpoint(point)
	}
}
