package exchange

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// The lists the index keeps. Each is ordered by Position; what a list
// holds is decided here, from the record alone, so reindex files every
// record exactly where Submit did.
func listRef(ref string) string           { return "ref:" + ref }             // documents answering to a number
func listDocs(ship string) string         { return "ship:" + ship + ":docs" } // a shipment's graph, events aside
func listEvents(ship string) string       { return "ship:" + ship + ":events" }
func listMoves(ship string) string        { return "ship:" + ship + ":moves" } // events the legs and status read
func listRetractions(ship string) string  { return "ship:" + ship + ":retractions" }
func listGrants(ship string) string       { return "ship:" + ship + ":grants" }
func listGrant(ship, party string) string { return "grant:" + ship + ":" + party }
func listTitle(ship string) string        { return "title:" + ship }             // the chain's entries, by seq
func listPartyShips(party string) string  { return "party:" + party + ":ships" } // one bills of the shipments a party takes part in

// Compactable reports whether an index may move a list's older entries
// out of its memory (redis: into segments beside the archive): a
// shipment's events, the lists that grow with every document. The others
// are read whole, or on the submit path, or grow with shipments only.
func Compactable(list string) bool {
	ref, ok := strings.CutPrefix(list, "ship:")
	return ok && strings.HasSuffix(ref, ":events")
}

// listShips holds every one bill: the shipments an operator sees.
const listShips = "ships"

// shipsListOf is the list of the shipments a party may see: every one for
// an operator, else those it takes part in (or was granted, or asked).
func shipsListOf(p Party) string {
	if p.Has(RoleOperator) {
		return listShips
	}
	return listPartyShips(p.ID)
}

// Entries returns the lists a record is filed in: what Submit and
// Reindex hand to Index.Add (and seeding tools with them).
func Entries(rec Record) []Entry {
	var es []Entry
	add := func(list string, at time.Time, id string) {
		es = append(es, Entry{List: list, Pos: Position(at, id)})
	}
	for _, r := range rec.Refs {
		add(listRef(r), rec.ReceivedAt, rec.ID)
	}
	if rec.Type == TypeOneBill {
		add(listShips, rec.ReceivedAt, rec.ID)
	}
	for _, l := range rec.Shipments {
		switch rec.Type {
		case TypeEvent:
			at := eventTime(rec)
			add(listEvents(l.Ref), at, rec.ID)
			if rec.Facts["milestone"] == "true" {
				add(listMoves(l.Ref), at, rec.ID)
			}
			if rec.Facts["retractedEventID"] != "" {
				add(listRetractions(l.Ref), rec.ReceivedAt, rec.ID)
			}
		case TypeTitle:
			seq, _ := strconv.Atoi(rec.Facts["seq"])
			add(listTitle(l.Ref), time.UnixMicro(int64(seq)), rec.ID)
			if r := rec.Facts["recipient"]; r != "" {
				add(listPartyShips(r), l.Opened, l.Doc) // asked, it may look before it answers
			}
		case TypeClearance:
			seq, _ := strconv.Atoi(rec.Facts["seq"])
			add(listClearance(rec.Facts["declarationId"]), time.UnixMicro(int64(seq)), rec.ID)
		case TypeGrant:
			party := rec.Facts["party"]
			seq, _ := strconv.Atoi(rec.Facts["seq"])
			add(listGrants(l.Ref), rec.ReceivedAt, rec.ID)
			add(listGrant(l.Ref, party), time.UnixMicro(int64(seq)), rec.ID) // by seq, whatever the gateways' clocks
			if rec.Facts["revoked"] == "" {
				add(listPartyShips(party), l.Opened, l.Doc)
			}
		default:
			add(listDocs(l.Ref), rec.ReceivedAt, rec.ID)
		}
		for _, m := range rec.Members {
			add(listPartyShips(m), l.Opened, l.Doc)
		}
	}
	return es
}

// eventTime is when an event happened (its eventDateTime), or when it
// was received if that does not parse.
func eventTime(rec Record) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, rec.Facts["eventDateTime"]); err == nil {
		return t
	}
	return rec.ReceivedAt
}

// milestone reports whether an event is one the legs and the status are
// computed from: a transport event (departure, arrival) or a gate-out (the
// delivery), reported by the one bill's issuer or a carrier of its legs.
// Others' events are shown, but move no leg: a party granted publishing
// cannot rewrite the shipment's progress. Milestones are few next to
// equipment events, so a view reads them all without reading every event.
func milestone(f map[string]string, sender string, plan *Plan, issuer string) bool {
	if f["eventType"] != "TRANSPORT" && f["eventCode"] != "GTOT" {
		return false
	}
	if sender == issuer {
		return true
	}
	return plan != nil && slices.ContainsFunc(plan.Legs, func(l LegPlan) bool { return l.Carrier == sender })
}
