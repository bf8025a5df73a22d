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
)

// Roles lists every role.
var Roles = []Role{RoleMTO, RoleCarrier, RoleTerminal, RoleDeclarant, RoleCustoms, RoleShipper, RoleConsignee, RoleOperator, RoleBank}

// Party is a participant of the corridor.
type Party struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Roles     []Role    `json:"roles"`
	Country   string    `json:"country"`
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
	Signature     string    `json:"signature"`
}

// Record is what the gateway knows of a submitted document besides its
// bytes: its receipt, the routing outcome and the facts the shipment view
// shows. It is archived beside the bytes, so indexes and queues can be
// rebuilt from the archive.
type Record struct {
	Receipt
	IdempotencyKey string            `json:"idempotencyKey,omitempty"`
	Size           int64             `json:"size"`
	Refs           []string          `json:"refs,omitempty"` // shipment refs: bill and container numbers
	Keys           []string          `json:"keys,omitempty"` // natural keys, e.g. "customs-declaration:CQ2026EX0093412"
	Facts          map[string]string `json:"facts,omitempty"`
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
}

// MessageOf returns the inbox message for a record.
func MessageOf(r Record) Message {
	return Message{DocumentID: r.ID, Type: r.Type, Sender: r.Sender, SHA256: r.SHA256, ReceivedAt: r.ReceivedAt}
}
