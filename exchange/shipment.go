package exchange

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Shipment is one shipment as a party sees it: the one bill's route and
// legs with their progress, every document of its graph (the bytes only
// for the parties that sent or received them), customs per declaration
// with each answer, the holder, and a page of its events. Lists are in
// time order.
type Shipment struct {
	Ref      string    `json:"ref"`
	Status   string    `json:"status"`
	Access   string    `json:"access"` // member, publish (a grant that may post) or read
	OpenedAt time.Time `json:"openedAt"`
	Route    Route     `json:"route"`
	Holder   string    `json:"holder,omitempty"`
	// TitleStatus is the one bill's title: ISSUED, PLEDGED,
	// SURRENDERED_FOR_AMENDMENT or SURRENDERED; TitlePending the action
	// waiting for its recipient, if any.
	TitleStatus  string        `json:"titleStatus"`
	TitlePending *TitleEntry   `json:"titlePending,omitempty"`
	Legs         []Leg         `json:"legs"`
	CurrentLeg   *int          `json:"currentLeg,omitempty"`
	Documents    []ShipmentDoc `json:"documents"`
	Customs      []Customs     `json:"customs"`
	Events       []Event       `json:"events"`
	// Next is the cursor of the next page of events; absent on the last.
	Next string `json:"next,omitempty"`
}

// Route is where a one bill takes the goods.
type Route struct {
	PlaceOfReceipt  string `json:"placeOfReceipt"`
	PortOfLoading   string `json:"portOfLoading"`
	PortOfDischarge string `json:"portOfDischarge"`
	PlaceOfDelivery string `json:"placeOfDelivery"`
}

// Leg is a leg of the one bill with its progress from the events.
type Leg struct {
	Index int `json:"index"`
	LegPlan
	EstimatedDeparture string `json:"estimatedDeparture,omitempty"`
	EstimatedArrival   string `json:"estimatedArrival,omitempty"`
	ActualDeparture    string `json:"actualDeparture,omitempty"`
	ActualArrival      string `json:"actualArrival,omitempty"`
	// Status is PLANNED, IN_TRANSIT, ARRIVED or DELAYED.
	Status       string `json:"status"`
	DelayMinutes int    `json:"delayMinutes,omitempty"`
}

// The statuses of a leg and of a shipment.
const (
	StatusPlanned   = "PLANNED"
	StatusInTransit = "IN_TRANSIT"
	StatusDelayed   = "DELAYED"
	StatusArrived   = "ARRIVED"
	StatusDelivered = "DELIVERED" // gated out at the place of delivery after the last leg
)

// ShipmentDoc is a document of a shipment's graph. Readable says whether
// the caller may fetch its bytes and receipt (it sent or received it).
type ShipmentDoc struct {
	ID            string    `json:"id"`
	Type          string    `json:"type"`
	SchemaVersion int       `json:"schemaVersion"`
	Number        string    `json:"number,omitempty"`
	Sender        string    `json:"sender"`
	ReceivedAt    time.Time `json:"receivedAt"`
	SHA256        string    `json:"sha256,omitempty"`
	Readable      bool      `json:"readable"`
	// Revision is the latest revision's number (2 and up) when the
	// document was amended; ID is then that revision's.
	Revision int `json:"revision,omitempty"`
}

// Event is a tracking event of a shipment.
type Event struct {
	DocumentID          string `json:"documentId"`
	EventID             string `json:"eventID"`
	EventType           string `json:"eventType"`
	EventCode           string `json:"eventCode"`
	EventClassifierCode string `json:"eventClassifierCode"`
	EventDateTime       string `json:"eventDateTime"`
	Location            string `json:"location"`
	ContainerNumber     string `json:"containerNumber,omitempty"`
	ModeOfTransport     string `json:"modeOfTransport,omitempty"`
	Publisher           string `json:"publisher"`
	Retracted           bool   `json:"retracted,omitempty"`
	RetractedEventID    string `json:"retractedEventID,omitempty"`
}

// Customs is a declaration of the shipment and its answers: the border
// is the country of the customs office.
type Customs struct {
	Country           string `json:"country"`
	CustomsAuthority  string `json:"customsAuthority"`
	DeclarationNumber string `json:"declarationNumber"`
	DeclarationKind   string `json:"declarationKind"`
	DeclarationID     string `json:"declarationId"` // the latest revision
	Revision          int    `json:"revision,omitempty"`
	Declarant         string `json:"declarant"`
	// Status is the clearance: the combined answer of every party the
	// declaration was routed to for a decision (see clearance.go).
	Status    string          `json:"status"`
	Answers   []Answer        `json:"answers"`
	Responses []CustomsStatus `json:"responses"`
}

// CustomsStatus is a customs response of a shipment.
type CustomsStatus struct {
	DocumentID           string `json:"documentId"`
	DeclarationReference string `json:"declarationReference"`
	// DeclarationID is the revision of the declaration it answered.
	DeclarationID    string `json:"declarationId,omitempty"`
	CustomsAuthority string `json:"customsAuthority"`
	Status           string `json:"status"`
	ResponseCode     string `json:"responseCode,omitempty"`
	ResponseDateTime string `json:"responseDateTime"`
}

// Summary is a shipment in one line, for lists.
type Summary struct {
	Ref         string    `json:"ref"`
	OpenedAt    time.Time `json:"openedAt"`
	Route       Route     `json:"route"`
	Status      string    `json:"status"`
	CurrentLeg  *Leg      `json:"currentLeg,omitempty"`
	LastEvent   *Event    `json:"lastEvent,omitempty"`
	Holder      string    `json:"holder,omitempty"`
	TitleStatus string    `json:"titleStatus"`
}

// Paging of events and shipment lists.
const (
	DefaultEventLimit    = 100
	MaxEventLimit        = 1000
	DefaultShipmentLimit = 50
	MaxShipmentLimit     = 200
	// maxMoves bounds the milestone events (departures, arrivals,
	// gate-outs, retractions) read to compute legs and status.
	maxMoves = 1000
	// maxScan bounds the shipments one list request looks at; a filter
	// that matches few of them answers with fewer and a cursor.
	maxScan = 500
	// maxRefMatches bounds the documents a ref may resolve through.
	maxRefMatches = 100
)

// EventQuery pages a shipment's events.
type EventQuery struct {
	Limit  int    // 0: DefaultEventLimit
	Cursor string // from Next
	Desc   bool   // newest first
}

// ShipmentView is the answer to a ref: one shipment, or, when the ref (a
// container or a manifest) belongs to several the caller may see, their
// summaries to choose from; shipments are never merged.
type ShipmentView struct {
	Shipment *Shipment
	Choices  []Summary
}

func encodeCursor(pos string) string { return base64.RawURLEncoding.EncodeToString([]byte(pos)) }

func decodeCursor(c string) (string, error) {
	pos, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || (c != "" && len(pos) <= 16) || len(c) > 512 {
		return "", Errorf(CodeMalformed, "the cursor is not one this gateway gave out; start again without it")
	}
	return string(pos), nil
}

// visible is a shipment the caller may see, and how.
type visible struct {
	st  *shipState
	acc access
}

// candidates returns the shipments a ref (a one bill's number, a number
// of a document in its graph, a container number) belongs to that the
// caller may see.
func (s *Service) candidates(ctx context.Context, caller Party, ref string) ([]visible, error) {
	ref = NormalizeRef(ref)
	if ref == "" || len(ref) > 64 {
		return nil, nil
	}
	// Newest first: a container's current shipment before its past ones.
	items, err := s.page(ctx, listRef(ref), "", maxRefMatches, true)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", ref, err)
	}
	var out []visible
	seen := map[string]bool{}
	for _, it := range items {
		for _, l := range it.Record.Shipments {
			if seen[l.Ref] {
				continue
			}
			seen[l.Ref] = true
			if !caller.Has(RoleOperator) {
				// Members, grantees and parties asked to take the title are
				// in their list: anyone else is turned away before the
				// shipment is read.
				if in, err := s.Index.Contains(ctx, listPartyShips(caller.ID), Position(l.Opened, l.Doc)); err != nil {
					return nil, err
				} else if !in {
					continue
				}
			}
			st, err := s.loadShipment(ctx, l.Ref)
			if errors.Is(err, ErrNotFound) {
				continue
			} else if err != nil {
				return nil, err
			}
			acc, err := s.accessOf(ctx, caller, st)
			if err != nil {
				return nil, err
			}
			if acc > accessNone {
				out = append(out, visible{st, acc})
			}
		}
	}
	return out, nil
}

// oneShipment resolves a ref to the one shipment it names for the caller.
func (s *Service) oneShipment(ctx context.Context, caller Party, ref string) (*shipState, access, error) {
	vs, err := s.candidates(ctx, caller, ref)
	switch {
	case err != nil:
		return nil, accessNone, err
	case len(vs) == 0:
		return nil, accessNone, Errorf(CodeNotFound, "no shipment %s", NormalizeRef(ref))
	case len(vs) > 1:
		return nil, accessNone, Errorf(CodeConflict, "%s belongs to %d shipments; name the one bill", NormalizeRef(ref), len(vs))
	}
	return vs[0].st, vs[0].acc, nil
}

// Shipment returns the shipment of a ref as the caller may see it: its
// members, the parties it was granted to, and operators. Anyone else gets
// not found.
func (s *Service) Shipment(ctx context.Context, caller Party, ref string, q EventQuery) (ShipmentView, error) {
	if q.Limit == 0 {
		q.Limit = DefaultEventLimit
	}
	if q.Limit < 1 || q.Limit > MaxEventLimit {
		return ShipmentView{}, Errorf(CodeMalformed, "limit is 1 to %d", MaxEventLimit)
	}
	after, err := decodeCursor(q.Cursor)
	if err != nil {
		return ShipmentView{}, err
	}
	vs, err := s.candidates(ctx, caller, ref)
	if err != nil {
		return ShipmentView{}, err
	}
	switch len(vs) {
	case 0:
		return ShipmentView{}, Errorf(CodeNotFound, "no shipment %s", NormalizeRef(ref))
	case 1:
		sh, err := s.view(ctx, caller, vs[0], after, q)
		return ShipmentView{Shipment: &sh}, err
	}
	var out ShipmentView
	for _, v := range vs {
		sum, err := s.summary(ctx, v.st)
		if err != nil {
			return ShipmentView{}, err
		}
		out.Choices = append(out.Choices, sum)
	}
	return out, nil
}

// progress is what the milestone events say of a shipment.
type progress struct {
	legs      []Leg
	current   *int
	status    string
	retracted map[string]bool // publisher + ":" + eventID
}

func (s *Service) progress(ctx context.Context, st *shipState) (progress, error) {
	moves, err := s.page(ctx, listMoves(st.ref), "", maxMoves, false)
	if err != nil {
		return progress{}, fmt.Errorf("read milestones: %w", err)
	}
	// The newest retractions: one party's flood of them pushes out its own.
	retractions, err := s.page(ctx, listRetractions(st.ref), "", maxMoves, true)
	if err != nil {
		return progress{}, fmt.Errorf("read retractions: %w", err)
	}
	p := progress{retracted: map[string]bool{}}
	for _, it := range retractions {
		p.retracted[it.Record.Sender+":"+it.Record.Facts["retractedEventID"]] = true
	}
	plan := st.bill.Plan
	if plan == nil {
		plan = &Plan{}
	}
	p.legs, p.status = legsOf(plan, moves, p.retracted, s.Now())
	for i, l := range p.legs {
		if l.Status != StatusArrived {
			p.current = &i
			break
		}
	}
	return p, nil
}

// legsOf matches departures and arrivals to the one bill's legs (a
// departure from a leg's origin, an arrival at its destination, in its
// mode when the event names one) and derives each leg's status and the
// shipment's. An actual time is the latest actual event; an estimate is
// the one received last. A leg is DELAYED when an actual or estimated
// time, or the clock for a departure or arrival still missing, passes
// the plan.
func legsOf(plan *Plan, moves []Item, retracted map[string]bool, now time.Time) ([]Leg, string) {
	legs := make([]Leg, len(plan.Legs))
	estAt := make([][2]time.Time, len(plan.Legs)) // when the estimates we keep were received
	for i, lp := range plan.Legs {
		legs[i] = Leg{Index: i, LegPlan: lp}
	}
	delivered := ""
	for _, it := range moves {
		r := it.Record
		f := r.Facts
		if retracted[r.Sender+":"+f["eventID"]] {
			continue
		}
		code, cls, loc, at := f["eventCode"], f["eventClassifierCode"], f["location"], f["eventDateTime"]
		if code == "GTOT" && cls == "ACT" && loc == plan.PlaceOfDelivery {
			delivered = at
		}
		for i := range legs {
			l := &legs[i]
			if m := f["modeOfTransport"]; m != "" && m != l.Mode {
				continue
			}
			var end int
			switch {
			case code == "DEPA" && loc == l.From:
				end = 0
			case code == "ARRI" && loc == l.To:
				end = 1
			default:
				continue
			}
			actual := [2]*string{&l.ActualDeparture, &l.ActualArrival}[end]
			est := [2]*string{&l.EstimatedDeparture, &l.EstimatedArrival}[end]
			switch cls {
			case "ACT":
				*actual = at // moves are in event-time order: the latest wins
			case "EST":
				if !r.ReceivedAt.Before(estAt[i][end]) {
					*est, estAt[i][end] = at, r.ReceivedAt
				}
			}
		}
	}
	for i := range legs {
		legStatus(&legs[i], now)
	}
	return legs, shipmentStatus(legs, delivered)
}

func legStatus(l *Leg, now time.Time) {
	late := func(actual, planned string) int {
		a, err1 := time.Parse(time.RFC3339, actual)
		p, err2 := time.Parse(time.RFC3339, planned)
		if err1 != nil || err2 != nil || !a.After(p) {
			return 0
		}
		return int(a.Sub(p) / time.Minute)
	}
	clock := now.Format(time.RFC3339)
	var delay int
	switch {
	case l.ActualArrival != "":
		l.Status, l.DelayMinutes = StatusArrived, late(l.ActualArrival, l.PlannedArrival)
		return
	case l.ActualDeparture != "":
		l.Status = StatusInTransit
		delay = max(late(l.ActualDeparture, l.PlannedDeparture), late(l.EstimatedArrival, l.PlannedArrival), late(clock, l.PlannedArrival))
	default:
		l.Status = StatusPlanned
		delay = max(late(l.EstimatedDeparture, l.PlannedDeparture), late(l.EstimatedArrival, l.PlannedArrival), late(clock, l.PlannedDeparture))
	}
	if delay > 0 {
		l.Status, l.DelayMinutes = StatusDelayed, delay
	}
}

func shipmentStatus(legs []Leg, delivered string) string {
	if len(legs) == 0 {
		return StatusPlanned
	}
	last := legs[len(legs)-1]
	switch {
	case last.Status == StatusArrived && delivered != "" && compareTimes(delivered, last.ActualArrival) >= 0:
		return StatusDelivered
	case last.Status == StatusArrived:
		return StatusArrived
	case slices.ContainsFunc(legs, func(l Leg) bool { return l.Status == StatusDelayed }):
		return StatusDelayed
	case slices.ContainsFunc(legs, func(l Leg) bool { return l.Status != StatusPlanned }):
		return StatusInTransit
	}
	return StatusPlanned
}

func routeOf(p *Plan) Route {
	if p == nil {
		return Route{}
	}
	return Route{PlaceOfReceipt: p.PlaceOfReceipt, PortOfLoading: p.PortOfLoading, PortOfDischarge: p.PortOfDischarge, PlaceOfDelivery: p.PlaceOfDelivery}
}

func eventOf(r Record, retracted map[string]bool) Event {
	f := r.Facts
	return Event{DocumentID: r.ID, EventID: f["eventID"], EventType: f["eventType"], EventCode: f["eventCode"],
		EventClassifierCode: f["eventClassifierCode"], EventDateTime: f["eventDateTime"], Location: f["location"],
		ContainerNumber: f["containerNumber"], ModeOfTransport: f["modeOfTransport"], Publisher: r.Sender,
		RetractedEventID: f["retractedEventID"], Retracted: retracted[r.Sender+":"+f["eventID"]]}
}

// view builds the shipment for the caller, with one page of its events.
func (s *Service) view(ctx context.Context, caller Party, v visible, after string, q EventQuery) (Shipment, error) {
	st := v.st
	p, err := s.progress(ctx, st)
	if err != nil {
		return Shipment{}, err
	}
	page, err := s.page(ctx, listEvents(st.ref), after, q.Limit+1, q.Desc)
	if err != nil {
		return Shipment{}, fmt.Errorf("read events: %w", err)
	}
	sh := Shipment{Ref: st.ref, Status: p.status, Access: v.acc.String(), OpenedAt: st.bill.ReceivedAt,
		Route: routeOf(st.bill.Plan), Holder: st.title.holder, TitleStatus: st.title.status, TitlePending: st.title.pending,
		Legs: p.legs, CurrentLeg: p.current,
		Documents: []ShipmentDoc{}, Events: []Event{}, Customs: customsOf(st.docs)}
	if len(page) > q.Limit {
		page = page[:q.Limit]
		sh.Next = encodeCursor(page[len(page)-1].Pos)
	}
	for _, it := range page {
		sh.Events = append(sh.Events, eventOf(it.Record, p.retracted))
	}
	for _, r := range st.docs {
		d := ShipmentDoc{ID: r.ID, Type: r.Type, SchemaVersion: r.SchemaVersion, Number: r.Facts["number"], Sender: r.Sender,
			ReceivedAt: r.ReceivedAt, Readable: r.Involves(caller.ID), Revision: r.Revision}
		if d.Readable {
			d.SHA256 = r.SHA256
		}
		sh.Documents = append(sh.Documents, d)
	}
	return sh, nil
}

// customsOf pairs the declarations of a shipment with their responses
// and works out each one's clearance.
func customsOf(docs []Record) []Customs {
	out := []Customs{}
	for _, r := range docs {
		if r.Type != TypeDeclaration {
			continue
		}
		f := r.Facts
		_, responses := declarationOf(&shipState{docs: docs}, f["declarationNumber"])
		c := clearanceOf(r, responses)
		cu := Customs{Country: c.Border, CustomsAuthority: f["customsAuthority"], DeclarationNumber: f["declarationNumber"],
			DeclarationKind: f["declarationKind"], DeclarationID: r.ID, Revision: r.Revision, Declarant: f["declarant"],
			Status: c.Status, Answers: c.Answers, Responses: []CustomsStatus{}}
		for _, x := range responses {
			xf := x.Facts
			cu.Responses = append(cu.Responses, CustomsStatus{DocumentID: x.ID, DeclarationReference: xf["declarationReference"],
				DeclarationID: xf["declarationId"], CustomsAuthority: xf["customsAuthority"], Status: xf["status"],
				ResponseCode: xf["responseCode"], ResponseDateTime: xf["responseDateTime"]})
		}
		slices.SortStableFunc(cu.Responses, func(a, b CustomsStatus) int { return compareTimes(a.ResponseDateTime, b.ResponseDateTime) })
		out = append(out, cu)
	}
	return out
}

// summary is a shipment in one line.
func (s *Service) summary(ctx context.Context, st *shipState) (Summary, error) {
	p, err := s.progress(ctx, st)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Ref: st.ref, OpenedAt: st.bill.ReceivedAt, Route: routeOf(st.bill.Plan), Status: p.status, Holder: st.title.holder,
		TitleStatus: st.title.status}
	if p.current != nil {
		sum.CurrentLeg = &p.legs[*p.current]
	}
	last, err := s.page(ctx, listEvents(st.ref), "", 1, true)
	if err != nil {
		return Summary{}, fmt.Errorf("read events: %w", err)
	}
	if len(last) > 0 {
		e := eventOf(last[0].Record, p.retracted)
		sum.LastEvent = &e
	}
	return sum, nil
}

// ShipmentQuery filters and pages the shipments a caller may see.
type ShipmentQuery struct {
	Status   string    // the shipment's status
	Mode     string    // a mode one of its legs travels by
	Location string    // a UN/LOCODE on its route
	From, To time.Time // bounds of when its one bill was received
	Cursor   string
	Limit    int // 0: DefaultShipmentLimit
}

// ShipmentList is a page of shipment summaries, newest first.
type ShipmentList struct {
	Shipments []Summary `json:"shipments"`
	Next      string    `json:"next,omitempty"`
}

// Shipments lists the shipments the caller may see, newest first: an
// operator sees every shipment, any other party those it is a member of
// or holds a grant on. One call looks at no more than maxScan
// shipments; when a filter leaves fewer than the limit among them, the
// answer carries the cursor to go on from.
func (s *Service) Shipments(ctx context.Context, caller Party, q ShipmentQuery) (ShipmentList, error) {
	if q.Limit == 0 {
		q.Limit = DefaultShipmentLimit
	}
	if q.Limit < 1 || q.Limit > MaxShipmentLimit {
		return ShipmentList{}, Errorf(CodeMalformed, "limit is 1 to %d", MaxShipmentLimit)
	}
	after, err := decodeCursor(q.Cursor)
	if err != nil {
		return ShipmentList{}, err
	}
	if after == "" && !q.To.IsZero() {
		after = Position(q.To.Add(time.Microsecond), "") // newest first: start just after To
	}
	list := shipsListOf(caller)
	out := ShipmentList{Shipments: []Summary{}}
	for scanned := 0; scanned < maxScan; {
		batch := min(100, maxScan-scanned)
		items, err := s.page(ctx, list, after, batch, true)
		if err != nil {
			return ShipmentList{}, fmt.Errorf("list shipments: %w", err)
		}
		for j, it := range items {
			after = it.Pos
			scanned++
			bill := it.Record
			if !q.From.IsZero() && bill.ReceivedAt.Before(q.From) {
				return out, nil // newest first: nothing older can match
			}
			if !planMatches(bill.Plan, q) || len(bill.Shipments) == 0 {
				continue
			}
			st, err := s.loadShipment(ctx, bill.Shipments[0].Ref)
			if errors.Is(err, ErrNotFound) {
				continue
			} else if err != nil {
				return ShipmentList{}, err
			}
			if st.original.ID != bill.ID {
				continue
			}
			if acc, err := s.accessOf(ctx, caller, st); err != nil {
				return ShipmentList{}, err
			} else if acc == accessNone {
				continue // a grant since revoked
			}
			sum, err := s.summary(ctx, st)
			if err != nil {
				return ShipmentList{}, err
			}
			if q.Status != "" && sum.Status != q.Status {
				continue
			}
			out.Shipments = append(out.Shipments, sum)
			if len(out.Shipments) == q.Limit {
				// A cursor only where shipments are left to look at.
				if more, err := s.entriesLeft(ctx, j+1 < len(items), list, after, true); err != nil {
					return ShipmentList{}, err
				} else if more {
					out.Next = encodeCursor(after)
				}
				return out, nil
			}
		}
		if len(items) < batch {
			return out, nil
		}
	}
	out.Next = encodeCursor(after)
	return out, nil
}

// entriesLeft reports whether a page's scan has entries left to look at:
// known (more in hand), else whether the list holds an entry after the
// position after (in the order desc says): the index alone, no record read.
func (s *Service) entriesLeft(ctx context.Context, known bool, list, after string, desc bool) (bool, error) {
	if known {
		return true, nil
	}
	items, err := s.Index.Page(ctx, list, after, 1, desc)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", list, err)
	}
	return len(items) > 0, nil
}

// planMatches applies the filters a one bill's plan answers alone.
func planMatches(p *Plan, q ShipmentQuery) bool {
	if p == nil {
		return q.Mode == "" && q.Location == ""
	}
	if q.Mode != "" && !slices.ContainsFunc(p.Legs, func(l LegPlan) bool { return l.Mode == q.Mode }) {
		return false
	}
	if q.Location != "" {
		places := []string{p.PlaceOfReceipt, p.PortOfLoading, p.PortOfDischarge, p.PlaceOfDelivery}
		for _, l := range p.Legs {
			places = append(places, l.From, l.To)
		}
		if !slices.Contains(places, q.Location) {
			return false
		}
	}
	return true
}

func compareTimes(a, b string) int {
	ta, _ := time.Parse(time.RFC3339Nano, a)
	tb, _ := time.Parse(time.RFC3339Nano, b)
	return ta.Compare(tb)
}
