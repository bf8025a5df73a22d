package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// One answer: a declaration is cleared when every party it was routed to
// for a decision has released it. Its clearance status is
//
//	REJECTED         when any decider rejected it, else
//	HELD             when any holds it, else
//	UNDER_INSPECTION when any inspects it, else
//	PENDING          while a decider has not released it (ACCEPTED is not a release), else
//	CONDITIONAL      when any released it under conditions, else
//	RELEASED.
//
// A decider's answer is its latest response. Each time the status
// changes, the declarant, the carriers of the shipment and the ports the
// declaration was routed to receive a clearance message.

// The clearance statuses besides the answers' own.
const (
	ClearancePending = "PENDING"
)

var clearanceRank = map[string]int{"REJECTED": 0, "HELD": 1, "UNDER_INSPECTION": 2, ClearancePending: 3, "CONDITIONAL": 4, "RELEASED": 5}

// Answer is a decider's latest answer to a declaration.
type Answer struct {
	Party      string `json:"party"`
	Status     string `json:"status"` // PENDING before it answers
	DocumentID string `json:"documentId,omitempty"`
	At         string `json:"at,omitempty"`
}

// Clearance is a declaration's combined answer.
type Clearance struct {
	DeclarationNumber string   `json:"declarationNumber"`
	DeclarationID     string   `json:"declarationId"`
	Border            string   `json:"border"`
	Status            string   `json:"status"`
	Previous          string   `json:"previousStatus,omitempty"`
	Answers           []Answer `json:"answers"`
	Seq               int      `json:"seq"`
}

// clearanceOf combines the responses to a declaration (oldest first).
func clearanceOf(decl Record, responses []Record) Clearance {
	c := Clearance{DeclarationNumber: decl.Facts["declarationNumber"], DeclarationID: decl.ID, Border: border(decl), Answers: []Answer{}}
	latest := map[string]Record{}
	for _, r := range responses {
		if id := r.Facts["declarationId"]; id != "" && id != decl.ID {
			continue // an answer to an earlier revision does not decide on this one
		}
		if prev, ok := latest[r.Sender]; !ok || r.ReceivedAt.After(prev.ReceivedAt) {
			latest[r.Sender] = r // the last one received, whatever time it says it was given
		}
	}
	c.Status = "RELEASED"
	for _, d := range deciders(decl) {
		a := Answer{Party: d, Status: ClearancePending}
		if r, ok := latest[d]; ok {
			a = Answer{Party: d, Status: r.Facts["status"], DocumentID: r.ID, At: r.Facts["responseDateTime"]}
		}
		c.Answers = append(c.Answers, a)
		st := a.Status
		if _, known := clearanceRank[st]; !known { // ACCEPTED and the like: not a release
			st = ClearancePending
		}
		if clearanceRank[st] < clearanceRank[c.Status] {
			c.Status = st
		}
	}
	return c
}

func border(decl Record) string {
	if o := decl.Facts["office"]; len(o) >= 2 {
		return o[:2]
	}
	return ""
}

func listClearance(declID string) string { return "clearance:" + declID }

// clear works out a declaration's clearance after an answer, and when it
// changed, archives a clearance message (one per change: its id is fixed
// by declaration and place in the sequence, and the archive is
// write-once) and delivers it.
func (s *Service) clear(ctx context.Context, rec Record) error {
	number := ""
	switch {
	case rec.Type == TypeResponse && rec.Facts["declarationId"] != "":
		number = rec.Facts["declarationReference"]
	case rec.Type == TypeDeclaration && rec.PreviousID != "":
		number = rec.Facts["declarationNumber"] // amended: the answers so far were to the revision before
	}
	if number == "" || len(rec.Shipments) == 0 {
		return nil
	}
	for range 5 { // another answer may take the same place first: look again
		st, err := s.loadShipment(ctx, rec.Shipments[0].Ref)
		if err != nil {
			return err
		}
		decl, responses := declarationOf(st, number)
		if decl.ID == "" {
			return nil
		}
		c := clearanceOf(decl, responses)
		c.Previous = ClearancePending
		if last, err := s.lastClearance(ctx, decl); err != nil {
			return err
		} else if last != nil {
			c.Previous = last.Facts["status"]
			c.Seq, _ = strconv.Atoi(last.Facts["seq"])
			c.Seq++
		}
		if c.Status == c.Previous {
			return nil
		}
		rec, body, err := s.clearanceRecord(ctx, st, decl, c)
		if err != nil {
			return err
		}
		if err := s.Archive.Put(ctx, rec, body); errors.Is(err, ErrExists) {
			if prev, err := s.Archive.Record(ctx, rec.ID); err == nil {
				_ = s.deliver(ctx, prev) // the winner's, indexed in case it was not yet
			}
			continue
		} else if err != nil {
			return fmt.Errorf("archive clearance: %w", err)
		}
		s.Logger.InfoContext(ctx, "clearance", "declaration", c.DeclarationNumber, "status", c.Status, "previous", c.Previous)
		return s.deliver(ctx, rec)
	}
	return nil
}

// lastClearance is the newest clearance message of a declaration, across
// its revisions (an amendment continues its predecessor's sequence).
func (s *Service) lastClearance(ctx context.Context, decl Record) (*Record, error) {
	for id := decl.ID; id != ""; {
		last, err := s.page(ctx, listClearance(id), "", 1, true)
		if err != nil {
			return nil, err
		}
		if len(last) > 0 {
			return &last[0].Record, nil
		}
		if id == decl.ID {
			id = decl.PreviousID
		} else {
			prev, err := s.record(ctx, id)
			if errors.Is(err, ErrNotFound) {
				return nil, nil
			} else if err != nil {
				return nil, err
			}
			id = prev.PreviousID
		}
	}
	return nil, nil
}

// declarationOf finds the latest revision of a declaration in a shipment
// and every response to it.
func declarationOf(st *shipState, number string) (Record, []Record) {
	var decl Record
	var responses []Record
	for _, r := range st.docs {
		switch {
		case r.Type == TypeDeclaration && NormalizeRef(r.Facts["declarationNumber"]) == NormalizeRef(number):
			decl = r
		case r.Type == TypeResponse && NormalizeRef(r.Facts["declarationReference"]) == NormalizeRef(number):
			responses = append(responses, r)
		}
	}
	return decl, responses
}

// clearanceRecord is the archived clearance message: it goes to the
// declarant, the carriers of the shipment's legs, and the ports the
// declaration was routed to.
func (s *Service) clearanceRecord(ctx context.Context, st *shipState, decl Record, c Clearance) (Record, []byte, error) {
	to := []string{decl.Facts["declarant"]}
	if p := st.bill.Plan; p != nil {
		for _, l := range p.Legs {
			to = append(to, l.Carrier)
		}
	}
	for _, r := range decl.Recipients {
		if p, ok, err := s.party(ctx, r); err != nil {
			return Record{}, nil, err
		} else if ok && p.Has(RolePort) {
			to = append(to, r)
		}
	}
	slices.Sort(to)
	to = slices.Compact(to)
	body, err := json.Marshal(struct {
		Type string `json:"documentType"`
		Clearance
	}{TypeClearance, c})
	if err != nil {
		return Record{}, nil, err
	}
	now := s.Now().UTC().Truncate(time.Microsecond)
	rec := s.sealed(DocumentID("clearance:"+decl.ID, strconv.Itoa(c.Seq), nil), TypeClearance, GatewayParty, now, to, body)
	rec.Shipments = decl.Shipments
	rec.Facts = map[string]string{"declarationId": decl.ID, "declarationNumber": c.DeclarationNumber, "status": c.Status,
		"previousStatus": c.Previous, "seq": strconv.Itoa(c.Seq), "border": c.Border}
	return rec, body, nil
}
