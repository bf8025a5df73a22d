// Package exchange is Corridor's domain: parties and their keys, documents
// and their records, who receives what, receipts, and the Service that runs
// submit, pull, ack and track. It does no I/O of its own: it declares the
// ports it needs (Archive, Queue, Index, Parties) and backends implement them.
package exchange

import (
	"slices"
	"time"
)

// Role is what a party may do on the corridor.
type Role string

// The roles. A party has one or more.
const (
	RoleMTO       Role = "mto"       // multimodal transport operator: issues one bills
	RoleCarrier   Role = "carrier"   // rail or sea carrier: notes, bills, manifests, events
	RoleTerminal  Role = "terminal"  // terminal or yard: equipment events
	RoleDeclarant Role = "declarant" // shipper, forwarder, broker: customs declarations
	RoleCustoms   Role = "customs"   // customs authority: pulls declarations, posts responses
	RoleShipper   Role = "shipper"
	RoleConsignee Role = "consignee"
	RoleOperator  Role = "operator" // logistics operator: tracks
	RoleBank      Role = "bank"
	RoleAgency    Role = "agency" // a competent authority beside customs: maritime safety, quarantine, licensing
	RolePort      Role = "port"   // port authority or terminal operator
)

// Roles lists every role.
var Roles = []Role{RoleMTO, RoleCarrier, RoleTerminal, RoleDeclarant, RoleCustoms, RoleShipper, RoleConsignee, RoleOperator, RoleBank,
	RoleAgency, RolePort}

// Party is a participant of the corridor.
type Party struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Roles   []Role `json:"roles"`
	Country string `json:"country"`
	// Places are the UN/LOCODEs where the party acts (a port, an agency's
	// office), for routing rules that send to "every port at CNQZH".
	Places    []string  `json:"places,omitempty"`
	Disabled  bool      `json:"disabled,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
}

// Has reports whether the party has one of the roles.
func (p Party) Has(roles ...Role) bool {
	return slices.ContainsFunc(roles, func(r Role) bool { return slices.Contains(p.Roles, r) })
}

// Receipt is what the sender gets back, signed by the gateway.
type Receipt struct {
	ID            string    `json:"id"`
	Type          string    `json:"type"`
	SchemaVersion int       `json:"schemaVersion"`
	Sender        string    `json:"sender"`
	SHA256        string    `json:"sha256"`
	ReceivedAt    time.Time `json:"receivedAt"`
	Recipients    []string  `json:"recipients"`
	// An amendment names its revision (2 and up) and the revision it
	// replaces, by id and SHA-256; absent on a first revision.
	Revision       int    `json:"revision,omitempty"`
	PreviousID     string `json:"previousId,omitempty"`
	PreviousSHA256 string `json:"previousSha256,omitempty"`
	// RoutedBy names the routing rules that added recipients.
	RoutedBy  []string `json:"routedBy,omitempty"`
	Signature string   `json:"signature"`
}

// Record is what the gateway knows of a submitted document besides its
// bytes: its receipt, the routing outcome and the facts the shipment view
// shows. It is archived beside the bytes, so indexes and queues can be
// rebuilt from the archive.
type Record struct {
	Receipt
	// Format is the version of this layout in the archive; reindex reads
	// every format it ever wrote (0: before shipments were linked).
	Format         int               `json:"format,omitempty"`
	IdempotencyKey string            `json:"idempotencyKey,omitempty"`
	Size           int64             `json:"size"`
	Refs           []string          `json:"refs,omitempty"` // numbers the document answers to: its own, and containers for a one bill
	Keys           []string          `json:"keys,omitempty"` // natural keys, e.g. "customs-declaration:CQ2026EX0093412"
	Facts          map[string]string `json:"facts,omitempty"`
	// Shipments are the one bills whose document graph this document
	// belongs to (a manifest may cover several).
	Shipments []Link `json:"shipments,omitempty"`
	// Members are the parties this document makes members of its
	// shipments: those it names in a role that takes part (a one bill's
	// shipper and carriers, a declaration's customs authority, ...).
	Members []string `json:"members,omitempty"`
	// Plan is a one bill's route and legs as issued, for the shipment view.
	Plan *Plan `json:"plan,omitempty"`
	// Deciders are the parties that must answer a declaration before it
	// is cleared: its customs authority and those the rules made decide.
	Deciders []string `json:"deciders,omitempty"`
}

// RecordFormat is the Format of records written now.
const RecordFormat = 2

// Link ties a document to a shipment: the one bill's number, its
// document id, and when it was received (the shipment's opening time,
// by which shipment lists are ordered).
type Link struct {
	Ref    string    `json:"ref"`
	Doc    string    `json:"doc"`
	Opened time.Time `json:"opened"`
}

// Plan is the journey a one bill was issued for.
type Plan struct {
	PlaceOfReceipt  string    `json:"placeOfReceipt"`
	PortOfLoading   string    `json:"portOfLoading"`
	PortOfDischarge string    `json:"portOfDischarge"`
	PlaceOfDelivery string    `json:"placeOfDelivery"`
	Legs            []LegPlan `json:"legs"`
	Containers      []string  `json:"containers,omitempty"`
	Consignee       string    `json:"consignee,omitempty"`
	ToOrder         bool      `json:"isToOrder,omitempty"`
}

// LegPlan is one leg of a one bill as planned.
type LegPlan struct {
	Mode             string `json:"modeOfTransport"`
	From             string `json:"from"`
	To               string `json:"to"`
	Carrier          string `json:"carrier"`
	Vehicle          string `json:"vehicle,omitempty"` // train number, or vessel name and voyage
	PlannedDeparture string `json:"plannedDeparture,omitempty"`
	PlannedArrival   string `json:"plannedArrival,omitempty"`
}

// The document types the gateway routes.
const (
	TypeOneBill     = "one-bill"
	TypeRailNote    = "rail-consignment-note"
	TypeSeaBill     = "sea-bill"
	TypeManifest    = "cargo-manifest"
	TypeDeclaration = "customs-declaration"
	TypeResponse    = "customs-response"
	TypeEvent       = "tracking-event"
	// TypeGrant is made by the gateway: a member's grant (or revocation)
	// of access to a shipment, archived like a document and delivered to
	// the grantee.
	TypeGrant = "shipment-grant"
	// TypeTitle is made by the gateway: an entry of a one bill's title
	// chain, delivered to every member of its shipment.
	TypeTitle = "title-change"
	// TypeClearance is made by the gateway: a declaration's combined
	// answer changed.
	TypeClearance = "clearance"
)

// GatewayParty is the sender of the messages the gateway makes itself
// (clearance); no party may take the id.
const GatewayParty = "corridor"

// ShipmentRefs returns the one bill numbers of the record's shipments.
func (r Record) ShipmentRefs() []string {
	out := make([]string, len(r.Shipments))
	for i, l := range r.Shipments {
		out[i] = l.Ref
	}
	return out
}

// Involves reports whether a party sent or received the document.
func (r Record) Involves(party string) bool {
	return r.Sender == party || slices.Contains(r.Recipients, party)
}

// Message is one document waiting in a party's inbox. A party receives a
// document at most once, so the document id identifies the message too.
type Message struct {
	DocumentID string    `json:"documentId"`
	Type       string    `json:"type"`
	Sender     string    `json:"sender"`
	SHA256     string    `json:"sha256"`
	ReceivedAt time.Time `json:"receivedAt"`
	// Ref is the (first) shipment of the document: push keeps a
	// shipment's messages in order.
	Ref string `json:"ref,omitempty"`
}

// MessageOf returns the inbox message for a record.
func MessageOf(r Record) Message {
	m := Message{DocumentID: r.ID, Type: r.Type, Sender: r.Sender, SHA256: r.SHA256, ReceivedAt: r.ReceivedAt}
	if len(r.Shipments) > 0 {
		m.Ref = r.Shipments[0].Ref
	}
	return m
}
