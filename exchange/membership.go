package exchange

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/landsea/corridor/schemas"
)

// Who takes part in a shipment is decided by its one bill, never by what
// a caller submitted: the members are the parties the one bill names
// (issuer, shipper, consignee, notify party, holder, each leg's carrier)
// and the parties that members' own documents name in their role (a sea
// bill's carrier, a declaration's customs authority and declarant, a
// manifest's customs authority). Grants add readers (and, with publish,
// publishers) for a time; operators read every timeline.

// maxGraphDocs bounds the documents of a shipment's graph (events,
// title entries and grants aside): one more is refused, so that every
// read of the graph sees all of it.
const maxGraphDocs = 1000

// MaxAnswers bounds the answers one authority gives one declaration.
const MaxAnswers = 20

// shipState is what the gateway knows of one shipment to decide who may
// see it and post to it: its one bill and the documents of its graph.
type shipState struct {
	ref       string
	bill      Record   // the one bill
	original  Record   // the one bill as first submitted (its title's issue)
	docs      []Record // oldest first, events aside
	titleRecs []Record // the title chain's entries after the issue, in order
	title     titleState
	members   map[string]bool
}

// loadShipment reads a shipment by its one bill's number, or ErrNotFound.
func (s *Service) loadShipment(ctx context.Context, ref string) (*shipState, error) {
	// The documents and the title chain in one read (two round trips on
	// Redis, not four).
	both, err := s.pages(ctx, PageQuery{List: listDocs(ref), Limit: maxGraphDocs + 1},
		PageQuery{List: listTitle(ref), Limit: maxChain})
	if err != nil {
		return nil, fmt.Errorf("read shipment %s: %w", ref, err)
	}
	items, titles := both[0], both[1]
	st := &shipState{ref: ref, members: map[string]bool{}, docs: make([]Record, 0, len(items))}
	superseded := map[string]bool{}
	for _, it := range items {
		if p := it.Record.PreviousID; p != "" {
			superseded[p] = true
		}
	}
	for _, it := range items {
		r := it.Record
		if r.Type == TypeOneBill && r.PreviousID == "" && st.original.ID == "" {
			st.original = r
		}
		if r.Type == TypeOneBill && !superseded[r.ID] {
			st.bill = r // the latest revision
		}
		for _, m := range r.Members {
			st.members[m] = true // earlier revisions' members stay members
		}
		if !superseded[r.ID] {
			st.docs = append(st.docs, r)
		}
	}
	if st.bill.ID == "" || st.original.ID == "" {
		return nil, ErrNotFound
	}
	st.titleRecs = make([]Record, 0, len(titles))
	for i, it := range titles {
		if entryOf(it.Record).Seq != i+1 {
			break // a gap: the entries after it are indexed again when the next append finds them
		}
		st.titleRecs = append(st.titleRecs, it.Record)
		for _, m := range it.Record.Members {
			st.members[m] = true
		}
	}
	if st.title, err = replayTitle(st.chain()); err != nil {
		return nil, fmt.Errorf("title of %s: %w", ref, err)
	}
	return st, nil
}

// access is what a party may do with a shipment.
type access int

const (
	accessNone    access = iota
	accessRead           // an operator, or a grant: the timeline, no bodies
	accessPublish        // a grant with publish: the timeline, and post to it
	accessMember         // a member: the timeline, and post to it
)

func (a access) String() string {
	return [...]string{"none", "read", "publish", "member"}[a]
}

// accessOf decides what the caller may do with a shipment. A grant is
// read from the index on every call, so a revocation holds at once on
// every gateway.
func (s *Service) accessOf(ctx context.Context, caller Party, st *shipState) (access, error) {
	if st.members[caller.ID] {
		return accessMember, nil
	}
	g, ok, err := s.activeGrant(ctx, st.ref, caller.ID)
	if err != nil {
		return accessNone, err
	}
	asked := st.title.pending != nil && st.title.pending.Recipient == caller.ID // to decide whether to accept
	switch {
	case ok && g.Publish:
		return accessPublish, nil
	case ok || asked || caller.Has(RoleOperator):
		return accessRead, nil
	}
	return accessNone, nil
}

// placed is a shipment a submitted document joins, with the pointer of the
// field that named it (for the caller's problems).
type placed struct {
	link    Link
	pointer string
	state   *shipState
}

// place finds the shipments a document belongs to, and refuses it unless
// the sender may post to each: a bill that does not exist is 409, a
// shipment the sender takes no part in is 403, and nothing is written.
func (s *Service) place(ctx context.Context, caller Party, rt route, f map[string]any, target *Record, rec *Record) ([]placed, error) {
	var out []placed
	addLinks := func(links []Link, pointer string) {
		for _, l := range links {
			if !slices.ContainsFunc(out, func(p placed) bool { return p.link.Ref == l.Ref }) {
				out = append(out, placed{link: l, pointer: pointer})
			}
		}
	}
	switch {
	case rec.Type == TypeOneBill:
		return nil, nil // it opens its own shipment
	case rt.ship != nil:
		for _, path := range rt.ship.paths {
			for _, v := range valuesAt(f, path) {
				bill, err := s.findBill(ctx, v.value, rt.ship.prefixes)
				if errors.Is(err, ErrNotFound) {
					return nil, &Error{Code: CodeConflict, Message: fmt.Sprintf("the gateway holds no bill %s", v.value),
						Problems: []schemas.Problem{{Pointer: v.pointer, Detail: fmt.Sprintf("no bill %s has been submitted; a document joins a shipment only after its bill", v.value)}}}
				} else if err != nil {
					return nil, err
				}
				addLinks(bill.Shipments, v.pointer)
			}
		}
	case rt.ref != nil && rt.ref.inheritShipments && target != nil:
		addLinks(target.Shipments, "/"+rt.ref.path)
	}
	for i := range out {
		st, err := s.loadShipment(ctx, out[i].link.Ref)
		if errors.Is(err, ErrNotFound) {
			return nil, Errorf(CodeConflict, "the gateway holds no one bill %s", out[i].link.Ref)
		} else if err != nil {
			return nil, err
		}
		acc, err := s.accessOf(ctx, caller, st)
		if err != nil {
			return nil, err
		}
		if acc == accessNone && target != nil && rt.ref.inheritShipments {
			// A document that joins a shipment through another (an answer
			// through its declaration) tells an outsider what a missing
			// reference would: the other's existence is not disclosed.
			return nil, rt.ref.missing(first(f, rt.ref.path))
		}
		if acc < accessPublish || (acc == accessPublish && rec.Type != TypeEvent) {
			// A grant with publish is for tracking events: a grantee's
			// document never names parties into the shipment.
			return nil, &Error{Code: CodeForbidden,
				Message:  "you take no part in the shipment this document names; its members post to it, and parties they granted publishing post tracking events",
				Problems: []schemas.Problem{{Pointer: out[i].pointer, Detail: "names a shipment you are not a member of"}}}
		}
		if rec.Type != TypeEvent && len(st.docs) >= maxGraphDocs {
			return nil, &Error{Code: CodeConflict, Message: fmt.Sprintf("shipment %s holds %d documents besides its events, the most one shipment takes", st.ref, maxGraphDocs),
				Problems: []schemas.Problem{{Pointer: out[i].pointer, Detail: "names a shipment that takes no more documents"}}}
		}
		if r := rt.ref; r != nil && r.perSender > 0 && target != nil {
			n := 0
			for _, d := range st.docs {
				if d.Type == rec.Type && d.Sender == rec.Sender && NormalizeRef(d.Facts[r.path]) == NormalizeRef(first(f, r.path)) {
					n++
				}
			}
			if n >= r.perSender {
				return nil, Errorf(CodeConflict, "you referred to %s %s %d times, the most one party may", r.what, first(f, r.path), r.perSender)
			}
		}
		out[i].state = st
	}
	return out, nil
}

// findBill returns the record of the bill holding a number under the
// first of the natural-key prefixes that has it.
func (s *Service) findBill(ctx context.Context, number string, prefixes []string) (Record, error) {
	for _, p := range prefixes {
		rec, err := s.referenced(ctx, p+NormalizeRef(number))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		return rec, err
	}
	return Record{}, ErrNotFound
}

// members returns the parties a document makes members of its shipments,
// refusing a party named in a role it does not have (a customs authority
// must be customs): otherwise a member could let anyone in by naming it.
func (s *Service) members(ctx context.Context, rt route, f map[string]any) ([]string, error) {
	var out []string
	var problems []schemas.Problem
	for _, m := range rt.members {
		for _, v := range valuesAt(f, m.path) {
			p, ok, err := s.party(ctx, v.value)
			if err != nil {
				return nil, fmt.Errorf("look up %s: %w", v.value, err)
			}
			switch {
			case m.role != "" && (!ok || !p.Has(m.role)):
				problems = append(problems, schemas.Problem{Pointer: v.pointer, Detail: fmt.Sprintf("%s is not a party with role %s", v.value, m.role)})
			case ok && !slices.Contains(out, v.value):
				out = append(out, v.value)
			}
		}
	}
	if len(problems) > 0 {
		return nil, &Error{Code: CodeInvalid, Message: "the document names parties in roles they do not have", Problems: problems}
	}
	slices.Sort(out)
	return out, nil
}
