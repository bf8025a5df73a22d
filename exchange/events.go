package exchange

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// EventFilter is what GET /v1/events takes: the events of the shipments
// a caller may see, filtered as DCSA Track & Trace's GET /events does.
type EventFilter struct {
	TransportDocumentReference string // a one bill or any number of its graph
	EquipmentReference         string // a container
	EventType                  string // TRANSPORT, EQUIPMENT, SHIPMENT
	EventTypeCode              string // GTIN, LOAD, DEPA, ARRI, ...
	UNLocationCode             string
	Min, Max                   time.Time // eventDateTime bounds
	Limit                      int       // 0: DefaultEventLimit
	Cursor                     string
	Desc                       bool // newest first
}

// EventList is a page of events.
type EventList struct {
	Events []ShipmentEvent `json:"events"`
	Next   string          `json:"next,omitempty"`
}

// ShipmentEvent is an event with the shipment it belongs to.
type ShipmentEvent struct {
	Event
	TransportDocumentReference string `json:"transportDocumentReference"`
}

// maxEventScopes bounds the shipments one event query reads: without a
// reference, the caller's newest shipments.
const maxEventScopes = 50

// maxEventScan bounds the events one call looks at; a filter that
// matches few of them answers with fewer and a cursor.
const maxEventScan = 5000

// Events answers an event query over the shipments the caller may see
// (those of the reference, or else its newest maxEventScopes shipments),
// shipment by shipment, each in event time order.
func (s *Service) Events(ctx context.Context, caller Party, q EventFilter) (EventList, error) {
	if q.Limit == 0 {
		q.Limit = DefaultEventLimit
	}
	if q.Limit < 1 || q.Limit > MaxEventLimit {
		return EventList{}, Errorf(CodeMalformed, "limit is 1 to %d", MaxEventLimit)
	}
	cur, err := decodeCursor(q.Cursor)
	if err != nil {
		return EventList{}, err
	}
	scope, err := s.eventScope(ctx, caller, q)
	if err != nil {
		return EventList{}, err
	}
	// The cursor is the shipment and the position in its events.
	start, after := 0, ""
	if cur != "" {
		ref, pos, ok := strings.Cut(cur, "|")
		if !ok {
			return EventList{}, Errorf(CodeMalformed, "the cursor is not one this gateway gave out; start again without it")
		}
		for i, st := range scope {
			if st.ref == ref {
				start, after = i, pos
			}
		}
	}
	out := EventList{Events: []ShipmentEvent{}}
	scanned := 0
	for i := start; i < len(scope); i++ {
		st := scope[i]
		if i != start || cur == "" {
			after = ""
			if !q.Desc && !q.Min.IsZero() {
				after = Position(q.Min.Add(-time.Microsecond), "~") // just before Min
			}
			if q.Desc && !q.Max.IsZero() {
				after = Position(q.Max.Add(time.Microsecond), "") // just after Max
			}
		}
		p, err := s.progress(ctx, st)
		if err != nil {
			return EventList{}, err
		}
		for scanned < maxEventScan {
			items, err := s.page(ctx, listEvents(st.ref), after, min(200, maxEventScan-scanned), q.Desc)
			if err != nil {
				return EventList{}, fmt.Errorf("read events: %w", err)
			}
			for j, it := range items {
				after = it.Pos
				scanned++
				e := eventOf(it.Record, p.retracted)
				at := eventTime(it.Record)
				if (!q.Min.IsZero() && at.Before(q.Min) && q.Desc) || (!q.Max.IsZero() && at.After(q.Max) && !q.Desc) {
					items = nil // past the bound: nothing further in this order matches
					break
				}
				if !q.matches(e, at) {
					continue
				}
				out.Events = append(out.Events, ShipmentEvent{Event: e, TransportDocumentReference: st.ref})
				if len(out.Events) == q.Limit {
					// A cursor only where events are left to look at.
					if more, err := s.entriesLeft(ctx, j+1 < len(items) || i+1 < len(scope), listEvents(st.ref), after, q.Desc); err != nil {
						return EventList{}, err
					} else if more {
						out.Next = encodeCursor(st.ref + "|" + after)
					}
					return out, nil
				}
			}
			if len(items) < 200 {
				break
			}
		}
		if scanned >= maxEventScan {
			out.Next = encodeCursor(st.ref + "|" + after)
			return out, nil
		}
	}
	return out, nil
}

func (q EventFilter) matches(e Event, at time.Time) bool {
	return (q.EventType == "" || e.EventType == q.EventType) && (q.EventTypeCode == "" || e.EventCode == q.EventTypeCode) &&
		(q.UNLocationCode == "" || e.Location == q.UNLocationCode) &&
		(q.EquipmentReference == "" || e.ContainerNumber == NormalizeRef(q.EquipmentReference)) &&
		(q.Min.IsZero() || !at.Before(q.Min)) && (q.Max.IsZero() || !at.After(q.Max))
}

// eventScope is the shipments an event query reads, in a stable order.
func (s *Service) eventScope(ctx context.Context, caller Party, q EventFilter) ([]*shipState, error) {
	ref := q.TransportDocumentReference
	if ref == "" {
		ref = q.EquipmentReference
	}
	if ref != "" {
		vs, err := s.candidates(ctx, caller, ref)
		if err != nil {
			return nil, err
		}
		out := make([]*shipState, 0, len(vs))
		for _, v := range vs {
			out = append(out, v.st)
		}
		return out, nil
	}
	list := shipsListOf(caller)
	items, err := s.page(ctx, list, "", maxEventScopes, true)
	if err != nil {
		return nil, err
	}
	var out []*shipState
	for _, it := range items {
		if len(it.Record.Shipments) == 0 {
			continue
		}
		st, err := s.loadShipment(ctx, it.Record.Shipments[0].Ref)
		if errors.Is(err, ErrNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		if acc, err := s.accessOf(ctx, caller, st); err != nil {
			return nil, err
		} else if acc != accessNone {
			out = append(out, st)
		}
	}
	return out, nil
}
