package exchange

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/landsea/corridor/schemas"
)

// An issuer corrects a document by submitting the new version with
// ?amends={documentId}: the same number, a new document id, revision N+1,
// and the previous revision's id and SHA-256 in the signed receipt. Every
// revision stays readable; the index and the shipment view follow the
// latest. A one bill is amended only while its title is with its issuer
// (after an accepted SURRENDER_FOR_AMENDMENT, or before it ever left).

// revisionKey is claimed by the amendment of a revision: one amendment
// per revision, so only the latest revision can be amended.
func revisionKey(id string) string { return "revision:" + id }

// amended returns the revision a submission amends, if the caller may
// amend it: a document it did not send or receive is not found, one it
// received but did not issue is forbidden.
func (s *Service) amended(ctx context.Context, caller Party, sub Submission) (*Record, error) {
	prev, err := s.visibleRecord(ctx, caller, sub.Amends)
	if err != nil {
		return nil, err
	}
	switch {
	case sub.Type == TypeEvent || sub.Type == TypeResponse:
		return nil, Errorf(CodeConflict, "a %s is not amended: a tracking event is corrected by a new event that retracts it (retractedEventID), an answer by a new answer", sub.Type)
	case prev.Sender != caller.ID:
		return nil, Errorf(CodeForbidden, "only %s, who issued document %s, amends it", prev.Sender, prev.ID)
	case prev.Type != sub.Type:
		return nil, Errorf(CodeConflict, "document %s is a %s, not a %s", prev.ID, prev.Type, sub.Type)
	case prev.Revision >= maxRevisions:
		return nil, Errorf(CodeConflict, "document %s is revision %d, the most a document takes", prev.ID, prev.Revision)
	}
	return &prev, nil
}

// amendsTitle reports whether a record is a one bill's amendment, which
// takes a place (AMEND) in the bill's title chain.
func (r Record) amendsTitle() bool { return r.Type == TypeOneBill && r.PreviousID != "" }

// maxRevisions bounds the revisions of a document (and what listing them
// reads).
const maxRevisions = 1000

// revise makes rec the next revision of prev: it keeps prev's number and
// shipments, takes the revision slot of prev (409 when prev was amended
// already: it is not the latest), and for a one bill checks the title.
func (s *Service) revise(ctx context.Context, rt route, f map[string]any, rec, prev *Record, claims *[]claim) error {
	var problems []schemas.Problem
	for _, k := range rt.keys {
		for _, v := range valuesAt(f, k.path) {
			if !slices.Contains(prev.Keys, k.of(rec.Sender, v.value)) {
				problems = append(problems, schemas.Problem{Pointer: v.pointer, Detail: "an amendment keeps the number of the document it amends"})
			}
		}
	}
	if len(problems) > 0 {
		return &Error{Code: CodeInvalid, Message: "an amendment keeps its document's number", Problems: problems}
	}
	if rec.Type != TypeOneBill && !slices.Equal(prev.ShipmentRefs(), rec.ShipmentRefs()) {
		return Errorf(CodeConflict, "an amendment stays in the shipments of the document it amends (%v), not %v", prev.ShipmentRefs(), rec.ShipmentRefs())
	}
	if rec.Type == TypeOneBill {
		st, err := s.loadShipment(ctx, prev.Shipments[0].Ref)
		if err != nil {
			return err
		}
		if !st.title.amendable() && st.title.doc != rec.ID { // (an earlier attempt of this very amendment recorded it)
			return Errorf(CodeConflict, "one bill %s is held by %s (%s): surrender it for amendment to its issuer first", st.ref, st.title.holder, st.title.status)
		}
		rec.Shipments = prev.Shipments // the same shipment, opened when it was
	}
	holder, err := s.claimKey(ctx, revisionKey(prev.ID), rec.ID, claims)
	if err != nil {
		return err
	}
	if holder != rec.ID {
		return Errorf(CodeConflict, "document %s was amended already (by %s): amend the latest revision", prev.ID, holder)
	}
	rec.Keys = append(rec.Keys, revisionKey(prev.ID))
	rec.Revision, rec.PreviousID, rec.PreviousSHA256 = max(prev.Revision, 1)+1, prev.ID, prev.SHA256
	return nil
}

// amendable reports whether the issuer may amend the bill now.
func (st titleState) amendable() bool {
	return st.pending == nil && (st.status == TitleSurrenderedForAmendment || (st.status == TitleIssued && st.holder == st.issuer))
}

// amendTitle records an amended one bill in its title (AMEND): the title
// returns to the party that surrendered it. Run again, it finds the entry
// there and does nothing.
func (s *Service) amendTitle(ctx context.Context, rec Record) error {
	if !rec.amendsTitle() {
		return nil
	}
	st, err := s.loadShipment(ctx, rec.Shipments[0].Ref)
	if err != nil {
		return err
	}
	if st.title.doc == rec.ID {
		return nil
	}
	// A revision amended since (its delivery completed late) had its AMEND
	// before its successor's: it takes no place in the chain again.
	if _, err := s.Index.Lookup(ctx, revisionKey(rec.ID)); err == nil {
		return nil
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("look up the revision after %s: %w", rec.ID, err)
	}
	to := st.title.surrenderer
	if st.title.status == TitleIssued {
		to = st.title.issuer
	}
	_, err = s.appendTitle(ctx, st, TitleEntry{Action: ActionAmend, Actor: rec.Sender, Recipient: to, DocumentID: rec.ID, DocumentSHA256: rec.SHA256})
	return err
}

// Revisions returns the receipts of every revision of a document that the
// caller sent or received, first to latest.
func (s *Service) Revisions(ctx context.Context, caller Party, id string) ([]Receipt, error) {
	rec, err := s.visibleRecord(ctx, caller, id)
	if err != nil {
		return nil, err
	}
	chain := []Record{rec}
	for r := rec; r.PreviousID != "" && len(chain) < maxRevisions; { // back to the first
		p, err := s.Archive.Record(ctx, r.PreviousID)
		if err != nil {
			return nil, fmt.Errorf("read revision %s: %w", r.PreviousID, err)
		}
		chain = append([]Record{p}, chain...)
		r = p
	}
	for r := rec; len(chain) < maxRevisions; { // on to the latest
		next, err := s.Index.Lookup(ctx, revisionKey(r.ID))
		if errors.Is(err, ErrNotFound) {
			break
		} else if err != nil {
			return nil, err
		}
		if r, err = s.Archive.Record(ctx, next); err != nil {
			return nil, fmt.Errorf("read revision %s: %w", next, err)
		}
		chain = append(chain, r)
	}
	out := []Receipt{}
	for _, r := range chain {
		if r.Involves(caller.ID) {
			out = append(out, r.Receipt)
		}
	}
	return out, nil
}
