package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/landsea/corridor/schemas"
)

// Grant lets a party that is not a member of a shipment read its
// timeline, until a time or until revoked; with Publish it may also post
// to it (a terminal, a trucker, a broker acting for the shipper). A grant
// and its revocation are archived like documents (type shipment-grant)
// and delivered to the grantee, so the archive rebuilds them.
type Grant struct {
	Shipment   string     `json:"shipment"`
	Party      string     `json:"party"`
	Publish    bool       `json:"publish"`
	Until      *time.Time `json:"until,omitempty"`
	Revoked    bool       `json:"revoked,omitempty"`
	By         string     `json:"by"` // who granted it, or who revoked it
	At         time.Time  `json:"at"`
	DocumentID string     `json:"documentId,omitempty"`
	Active     bool       `json:"active"`
}

// GrantRequest is what a member asks for.
type GrantRequest struct {
	Party   string
	Until   *time.Time
	Publish bool
}

// grantOf reads a grant back from its record.
func grantOf(rec Record, now time.Time) Grant {
	f := rec.Facts
	g := Grant{Party: f["party"], Publish: f["publish"] == "true", Revoked: f["revoked"] == "true", By: rec.Sender,
		At: rec.ReceivedAt, DocumentID: rec.ID}
	if len(rec.Shipments) > 0 {
		g.Shipment = rec.Shipments[0].Ref
	}
	if t, err := time.Parse(time.RFC3339Nano, f["until"]); err == nil {
		g.Until = &t
	}
	g.Active = !g.Revoked && (g.Until == nil || now.Before(*g.Until))
	return g
}

// activeGrant returns the party's grant on a shipment if one is in force.
func (s *Service) activeGrant(ctx context.Context, ship, party string) (Grant, bool, error) {
	rec, err := s.latestGrant(ctx, ship, party)
	if err != nil || rec == nil {
		return Grant{}, false, err
	}
	g := grantOf(*rec, s.Now())
	return g, g.Active, nil
}

// latestGrant is the record of a party's latest grant (or revocation) on a
// shipment, the highest numbered; nil when there is none.
func (s *Service) latestGrant(ctx context.Context, ship, party string) (*Record, error) {
	items, err := s.page(ctx, listGrant(ship, party), "", 1, true)
	if err != nil || len(items) == 0 {
		return nil, err
	}
	return &items[0].Record, nil
}

// memberShipment resolves a ref to one shipment the caller is a member
// of: not found when the caller cannot see it, forbidden when it only
// reads it (operators and grantees do not manage grants).
func (s *Service) memberShipment(ctx context.Context, caller Party, ref string) (*shipState, error) {
	st, acc, err := s.oneShipment(ctx, caller, ref)
	if err != nil {
		return nil, err
	}
	if acc != accessMember {
		return nil, Errorf(CodeForbidden, "only the members of shipment %s manage its grants", st.ref)
	}
	return st, nil
}

// GrantAccess lets a member give another party access to a shipment.
func (s *Service) GrantAccess(ctx context.Context, caller Party, ref string, req GrantRequest) (Grant, error) {
	st, err := s.memberShipment(ctx, caller, ref)
	if err != nil {
		return Grant{}, err
	}
	var problems []schemas.Problem
	_, exists, err := s.party(ctx, req.Party)
	switch {
	case err != nil:
		return Grant{}, fmt.Errorf("look up %s: %w", req.Party, err)
	case !exists:
		problems = append(problems, schemas.Problem{Pointer: "/party", Detail: fmt.Sprintf("no party %q", req.Party)})
	case st.members[req.Party]:
		problems = append(problems, schemas.Problem{Pointer: "/party", Detail: req.Party + " is a member of the shipment already"})
	}
	if req.Until != nil && !req.Until.After(s.Now()) {
		problems = append(problems, schemas.Problem{Pointer: "/until", Detail: "must be in the future"})
	}
	if len(problems) > 0 {
		return Grant{}, &Error{Code: CodeInvalid, Message: "the grant is not valid", Problems: problems}
	}
	if all, err := s.page(ctx, listGrants(st.ref), "", maxGrants, false); err != nil {
		return Grant{}, err
	} else if len(all) >= maxGrants {
		return Grant{}, Errorf(CodeConflict, "shipment %s has had %d grants and revocations, the most it takes", st.ref, maxGrants)
	}
	return s.writeGrant(ctx, caller, st, Grant{Party: req.Party, Publish: req.Publish, Until: req.Until})
}

// RevokeGrant ends a party's grant on a shipment, at once on every
// gateway (grants are read from the shared index on every request). The
// party that granted it or the one bill's issuer may revoke it.
func (s *Service) RevokeGrant(ctx context.Context, caller Party, ref, party string) error {
	st, err := s.memberShipment(ctx, caller, ref)
	if err != nil {
		return err
	}
	g, ok, err := s.activeGrant(ctx, st.ref, party)
	if err != nil {
		return err
	}
	if !ok {
		return Errorf(CodeNotFound, "%s holds no grant on shipment %s", party, st.ref)
	}
	if caller.ID != g.By && caller.ID != st.bill.Sender {
		return Errorf(CodeForbidden, "only %s, who granted it, or the one bill's issuer revokes this grant", g.By)
	}
	_, err = s.writeGrant(ctx, caller, st, Grant{Party: party, Publish: g.Publish, Revoked: true})
	return err
}

// Grants lists the latest grant of each party on a shipment, for its members.
func (s *Service) Grants(ctx context.Context, caller Party, ref string) ([]Grant, error) {
	st, err := s.memberShipment(ctx, caller, ref)
	if err != nil {
		return nil, err
	}
	items, err := s.page(ctx, listGrants(st.ref), "", maxGrants, false)
	if err != nil {
		return nil, err
	}
	latest := map[string]int{} // party -> index in out
	seqs := map[string]int{}
	out := []Grant{}
	now := s.Now()
	for _, it := range items {
		g := grantOf(it.Record, now)
		seq, _ := strconv.Atoi(it.Record.Facts["seq"])
		if i, ok := latest[g.Party]; ok {
			if seq > seqs[g.Party] {
				out[i], seqs[g.Party] = g, seq
			}
			continue
		}
		latest[g.Party], seqs[g.Party] = len(out), seq
		out = append(out, g)
	}
	return out, nil
}

// maxGrants bounds the grants and revocations of one shipment.
const maxGrants = 500

// writeGrant archives a grant (or revocation), indexes it and tells the
// grantee. A party's grants on a shipment are numbered, and each number
// is one write-once document: the latest is the highest number, whatever
// the gateways' clocks say, and of two changes at once one wins (409).
func (s *Service) writeGrant(ctx context.Context, caller Party, st *shipState, g Grant) (Grant, error) {
	seq := 0
	if last, err := s.latestGrant(ctx, st.ref, g.Party); err != nil {
		return Grant{}, err
	} else if last != nil {
		n, _ := strconv.Atoi(last.Facts["seq"])
		seq = n + 1
	}
	now := s.Now().UTC().Truncate(time.Microsecond)
	g.Shipment, g.By, g.At = st.ref, caller.ID, now
	// The archived document: what was granted, by whom, when; not the
	// state computed on reading (active) nor its own id.
	body, err := json.Marshal(struct {
		Type     string     `json:"documentType"`
		Shipment string     `json:"shipment"`
		Party    string     `json:"party"`
		Publish  bool       `json:"publish"`
		Until    *time.Time `json:"until,omitempty"`
		Revoked  bool       `json:"revoked,omitempty"`
		By       string     `json:"by"`
		At       time.Time  `json:"at"`
	}{TypeGrant, g.Shipment, g.Party, g.Publish, g.Until, g.Revoked, g.By, g.At})
	if err != nil {
		return Grant{}, err
	}
	rec := s.sealed(DocumentID("grant:"+st.ref+":"+g.Party, strconv.Itoa(seq), nil), TypeGrant, caller.ID, now, []string{g.Party}, body)
	rec.Shipments = []Link{{Ref: st.ref, Doc: st.bill.ID, Opened: st.bill.ReceivedAt}}
	rec.Facts = map[string]string{"party": g.Party, "publish": strconv.FormatBool(g.Publish), "seq": strconv.Itoa(seq)}
	if g.Until != nil {
		rec.Facts["until"] = g.Until.UTC().Format(time.RFC3339Nano)
	}
	if g.Revoked {
		rec.Facts["revoked"] = "true"
	}
	if err := s.Archive.Put(ctx, rec, body); errors.Is(err, ErrExists) {
		if won, err := s.Archive.Record(ctx, rec.ID); err == nil {
			_ = s.deliver(ctx, won) // the winner's, indexed in case its gateway did not get that far
		}
		return Grant{}, Errorf(CodeConflict, "the grants of %s on shipment %s changed while you asked; read them again", g.Party, st.ref)
	} else if err != nil {
		return Grant{}, fmt.Errorf("archive grant: %w", err)
	}
	if err := s.deliver(ctx, rec); err != nil {
		return Grant{}, err
	}
	s.Logger.InfoContext(ctx, "shipment grant", "shipment", st.ref, "party", g.Party, "by", caller.ID, "revoked", g.Revoked, "publish", g.Publish)
	return grantOf(rec, s.Now()), nil
}

// GrantOf returns a party's latest grant on a shipment, to the shipment's
// members and to the grantee itself.
func (s *Service) GrantOf(ctx context.Context, caller Party, ref, party string) (Grant, error) {
	st, acc, err := s.oneShipment(ctx, caller, ref)
	if err != nil {
		return Grant{}, err
	}
	if acc != accessMember && caller.ID != party {
		return Grant{}, Errorf(CodeForbidden, "only the members of shipment %s see its grants", st.ref)
	}
	rec, err := s.latestGrant(ctx, st.ref, party)
	if err != nil {
		return Grant{}, err
	}
	if rec == nil {
		return Grant{}, Errorf(CodeNotFound, "%s holds no grant on shipment %s", party, st.ref)
	}
	return grantOf(*rec, s.Now()), nil
}
