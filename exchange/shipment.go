package exchange

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Shipment is what a party of a shipment sees of it: its documents (those
// the party sent or received), its events and customs statuses (for every
// party of the shipment), and who holds the one bill, each list in time order.
type Shipment struct {
	Ref       string          `json:"ref"`
	Documents []ShipmentDoc   `json:"documents"`
	Events    []Event         `json:"events"`
	Customs   []CustomsStatus `json:"customs"`
	Holder    string          `json:"holder,omitempty"`
}

// ShipmentDoc is a document of a shipment.
type ShipmentDoc struct {
	ID            string    `json:"id"`
	Type          string    `json:"type"`
	SchemaVersion int       `json:"schemaVersion"`
	Sender        string    `json:"sender"`
	ReceivedAt    time.Time `json:"receivedAt"`
	SHA256        string    `json:"sha256"`
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
	Publisher           string `json:"publisher"`
	Retracted           bool   `json:"retracted,omitempty"`
	RetractedEventID    string `json:"retractedEventID,omitempty"`
}

// CustomsStatus is a customs response of a shipment.
type CustomsStatus struct {
	DocumentID           string `json:"documentId"`
	DeclarationReference string `json:"declarationReference"`
	CustomsAuthority     string `json:"customsAuthority"`
	Status               string `json:"status"`
	ResponseCode         string `json:"responseCode,omitempty"`
	ResponseDateTime     string `json:"responseDateTime"`
}

// Shipment returns the shipment of a bill or container number, if the
// caller is a party to it; otherwise not found.
func (s *Service) Shipment(ctx context.Context, caller Party, ref string) (Shipment, error) {
	ref = NormalizeRef(ref)
	recs, err := s.Index.Shipment(ctx, ref)
	if err != nil {
		return Shipment{}, fmt.Errorf("read shipment: %w", err)
	}
	if !slices.ContainsFunc(recs, func(r Record) bool { return r.Involves(caller.ID) }) {
		return Shipment{}, Errorf(CodeNotFound, "no shipment %s", ref)
	}
	sh := Shipment{Ref: ref, Documents: []ShipmentDoc{}, Events: []Event{}, Customs: []CustomsStatus{}}
	retracted := map[string]bool{}
	for _, r := range recs { // oldest first
		if r.Involves(caller.ID) {
			sh.Documents = append(sh.Documents, ShipmentDoc{ID: r.ID, Type: r.Type, SchemaVersion: r.SchemaVersion,
				Sender: r.Sender, ReceivedAt: r.ReceivedAt, SHA256: r.SHA256})
		}
		f := r.Facts
		switch r.Type {
		case "tracking-event":
			sh.Events = append(sh.Events, Event{DocumentID: r.ID, EventID: f["eventID"], EventType: f["eventType"],
				EventCode: f["eventCode"], EventClassifierCode: f["eventClassifierCode"], EventDateTime: f["eventDateTime"],
				Location: f["location"], ContainerNumber: f["containerNumber"], Publisher: r.Sender, RetractedEventID: f["retractedEventID"]})
			if f["retractedEventID"] != "" {
				retracted[r.Sender+":"+f["retractedEventID"]] = true
			}
		case "customs-response":
			sh.Customs = append(sh.Customs, CustomsStatus{DocumentID: r.ID, DeclarationReference: f["declarationReference"],
				CustomsAuthority: f["customsAuthority"], Status: f["status"], ResponseCode: f["responseCode"], ResponseDateTime: f["responseDateTime"]})
		case "one-bill":
			if f["holder"] != "" {
				sh.Holder = f["holder"]
			}
		}
	}
	for i, e := range sh.Events {
		sh.Events[i].Retracted = retracted[e.Publisher+":"+e.EventID]
	}
	slices.SortStableFunc(sh.Events, func(a, b Event) int { return compareTimes(a.EventDateTime, b.EventDateTime) })
	slices.SortStableFunc(sh.Customs, func(a, b CustomsStatus) int { return compareTimes(a.ResponseDateTime, b.ResponseDateTime) })
	return sh, nil
}

func compareTimes(a, b string) int {
	ta, _ := time.Parse(time.RFC3339Nano, a)
	tb, _ := time.Parse(time.RFC3339Nano, b)
	return ta.Compare(tb)
}
