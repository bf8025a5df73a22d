package exchange

import (
	"slices"
	"strings"
)

// route is what the gateway knows of a document type: who may issue it,
// which field names the issuer, which fields name parties (the
// recipients), what it references, and what the shipment view shows of it.
type route struct {
	roles  []Role   // roles that may submit it
	issuer string   // top-level field that must name the sender
	named  []string // paths of party ids; "*" walks an array
	refs   []string // paths of shipment refs (bill and container numbers)
	keys   []key    // natural keys the document claims
	facts  map[string]string
	// the document it refers to, if any
	ref *reference
}

// key is a natural key: prefix + the value at path (upper-cased), or,
// perSender, prefix + sender + ":" + the value as it is.
type key struct {
	prefix, path string
	perSender    bool
}

// reference is a document another one names, found by its natural key.
type reference struct {
	path     string // field holding the reference
	prefix   string // natural key it must match
	what     string // for the message
	required bool   // 409 when the gateway does not hold it
	// parties of the referenced document that receive this one too
	parties func(Record) []string
	// inheritRefs files this document under the referenced one's shipments
	inheritRefs bool
	// check refuses a document that does not match what it refers to
	check func(doc map[string]any, target Record) error
}

var oneBill = reference{path: "oneBillReference", prefix: "one-bill:", what: "one bill", required: true}

var containerRefs = []string{"containers/*/containerNumber"}

var routes = map[string]route{
	"one-bill": {
		roles: []Role{RoleMTO, RoleCarrier}, issuer: "issuer",
		named: []string{"issuer", "shipper", "consignee", "notifyParty", "holder", "legs/*/carrier"},
		refs:  append([]string{"transportDocumentReference"}, containerRefs...),
		keys:  []key{{prefix: "one-bill:", path: "transportDocumentReference"}},
		facts: map[string]string{"holder": "holder", "transportDocumentReference": "transportDocumentReference"},
	},
	"rail-consignment-note": {
		roles: []Role{RoleCarrier}, issuer: "carrier",
		named: []string{"carrier", "consignor", "consignee"},
		refs:  append([]string{"oneBillReference"}, containerRefs...),
		keys:  []key{{prefix: "rail-consignment-note:", path: "consignmentNumber"}},
		ref:   &oneBill,
	},
	"sea-bill": {
		roles: []Role{RoleCarrier}, issuer: "carrier",
		named: []string{"carrier", "shipper", "consignee", "notifyParty"},
		refs:  append([]string{"transportDocumentReference", "oneBillReference"}, containerRefs...),
		keys:  []key{{prefix: "sea-bill:", path: "transportDocumentReference"}},
		ref:   &oneBill,
	},
	"cargo-manifest": {
		roles: []Role{RoleCarrier}, issuer: "carrier",
		named: []string{"carrier", "customsAuthority"},
		refs:  []string{"bills/*/transportDocumentReference", "bills/*/containerNumbers/*"},
		keys:  []key{{prefix: "cargo-manifest:", path: "manifestNumber"}},
	},
	"customs-declaration": {
		roles: []Role{RoleDeclarant}, issuer: "declarant",
		named: []string{"declarant", "customsAuthority"},
		refs:  []string{"billReference", "containerNumbers/*"},
		keys:  []key{{prefix: "customs-declaration:", path: "declarationNumber"}},
		facts: map[string]string{"declarationNumber": "declarationNumber", "declarationKind": "declarationKind",
			"customsAuthority": "customsAuthority", "declarant": "declarant"},
	},
	"customs-response": {
		roles: []Role{RoleCustoms}, issuer: "customsAuthority",
		named: []string{"customsAuthority", "declarant"},
		facts: map[string]string{"declarationReference": "declarationReference", "status": "status",
			"responseCode": "responseCode", "responseDateTime": "responseDateTime", "customsAuthority": "customsAuthority"},
		// A response goes back to the declarant, under the declaration's shipments.
		ref: &reference{path: "declarationReference", prefix: "customs-declaration:", what: "customs declaration",
			required: true, inheritRefs: true, check: responseMatches,
			parties: func(decl Record) []string { return []string{decl.Facts["declarant"]} }},
	},
	"tracking-event": {
		roles: []Role{RoleCarrier, RoleMTO, RoleTerminal}, issuer: "publisher",
		named: []string{"publisher"},
		refs:  []string{"billReference", "containerNumber"},
		keys:  []key{{prefix: "tracking-event:", path: "eventID", perSender: true}},
		// An event reaches the parties of the one bill it belongs to.
		ref: &reference{path: "billReference", prefix: "one-bill:", what: "one bill",
			parties: func(bill Record) []string { return append([]string{bill.Sender}, bill.Recipients...) }},
		facts: map[string]string{"eventID": "eventID", "eventType": "eventType", "eventCode": "eventCode",
			"eventClassifierCode": "eventClassifierCode", "eventDateTime": "eventDateTime",
			"location": "eventLocation/UNLocationCode", "containerNumber": "containerNumber",
			"retractedEventID": "retractedEventID", "billReference": "billReference"},
	},
}

// first returns the first string at a path, or "".
func first(doc any, path string) string {
	if v := values(doc, path); len(v) > 0 {
		return v[0]
	}
	return ""
}

// values returns the strings at a slash-separated path, "*" walking arrays.
func values(doc any, path string) []string {
	head, rest, more := strings.Cut(path, "/")
	var next []any
	switch t := doc.(type) {
	case map[string]any:
		if v, ok := t[head]; ok {
			next = []any{v}
		}
	case []any:
		if head == "*" {
			next = t
		}
	}
	var out []string
	for _, v := range next {
		if more {
			out = append(out, values(v, rest)...)
		} else if s, ok := v.(string); ok && s != "" {
			out = append(out, s)
		}
	}
	return out
}

func valuesAll(doc map[string]any, paths []string) []string {
	var out []string
	for _, p := range paths {
		for _, v := range values(doc, p) {
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out
}

// NormalizeRef is how shipment refs are compared: bill and container
// numbers are case-insensitive.
func NormalizeRef(ref string) string { return strings.ToUpper(strings.TrimSpace(ref)) }
