package exchange

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/landsea/corridor/schemas"
)

// route is what the gateway knows of a document type: who may issue it,
// which field names the issuer, which fields name parties (the
// recipients), which shipment it belongs to and who it makes a member,
// what it references, and what the shipment view shows of it.
type route struct {
	roles  []Role   // roles that may submit it
	issuer string   // top-level field that must name the sender
	named  []string // paths of party ids; "*" walks an array
	refs   []string // numbers the document answers to in GET /v1/shipments/{ref}
	keys   []key    // natural keys the document claims
	// name is a number that names a document never amended (an event's
	// id): its id is derived from it (NamedDocumentID), so the archive's
	// conditional write keeps the number unique and the index holds
	// nothing of it. Documents named so before 2026-11-27 claimed it as a
	// natural key, which the index keeps (namedBefore).
	name  *key
	facts map[string]string
	// members are the fields naming parties that this document makes
	// members of its shipments, each with the role the party must have
	// ("" for any).
	members []member
	// ship names the bills (one bill or sea bill numbers, as prefixes
	// says) that place the document in a shipment; a one bill opens its
	// own and has none.
	ship *shipRef
	// the document it refers to, if any
	ref *reference
	// toBill sends the document to the parties of its shipment's one bill.
	toBill bool
}

// member is a field whose party becomes a member of the shipment.
type member struct {
	path string
	role Role
}

// shipRef is where a document names its shipment.
type shipRef struct {
	paths    []string // fields holding bill numbers; "*" walks an array
	prefixes []string // natural keys a number may match, in order
}

// key is a natural key: prefix + the value at path (upper-cased), or,
// perSender, prefix + sender + ":" + the value as it is.
type key struct {
	prefix, path string
	perSender    bool
}

// of is the natural key a sender's document claims with value v.
func (k key) of(sender, v string) string {
	if k.perSender {
		return k.prefix + sender + ":" + v
	}
	return k.prefix + NormalizeRef(v)
}

// nameOf is the natural key that names a sender's document of this route
// (route.name) with its fields f, and the number in it; "" when none does.
func (rt route) nameOf(sender string, f map[string]any) (key, v string) {
	if rt.name == nil {
		return "", ""
	}
	if v = first(f, rt.name.path); v == "" {
		return "", ""
	}
	return rt.name.of(sender, v), v
}

// reference is a document another one names, found by its natural key.
type reference struct {
	path     string // field holding the reference
	prefix   string // natural key it must match
	what     string // for the message
	required bool   // 409 when the gateway does not hold it
	// parties of the referenced document that receive this one too
	parties func(Record) []string
	// inheritShipments places this document in the referenced one's shipments
	inheritShipments bool
	// check refuses a document that does not match what it refers to
	check func(doc map[string]any, target Record) error
	// perSender bounds how many documents one sender refers to one target
	// with (0: no bound), so one party cannot grow a shipment without end.
	perSender int
}

// missing is the refusal of a reference the gateway does not hold.
func (r *reference) missing(ref string) error {
	return &Error{Code: CodeConflict, Message: fmt.Sprintf("the gateway holds no %s %s", r.what, ref),
		Problems: []schemas.Problem{{Pointer: "/" + r.path, Detail: fmt.Sprintf("no %s %s has been submitted", r.what, ref)}}}
}

const (
	keyOneBill     = TypeOneBill + ":"
	keySeaBill     = TypeSeaBill + ":"
	keyDeclaration = TypeDeclaration + ":"
)

var (
	oneBillOnly = []string{keyOneBill}
	anyBill     = []string{keyOneBill, keySeaBill}
)

var routes = map[string]route{
	TypeOneBill: {
		roles: []Role{RoleMTO, RoleCarrier}, issuer: "issuer",
		named: []string{"issuer", "shipper", "consignee", "notifyParty", "holder", "legs/*/carrier"},
		refs:  []string{"transportDocumentReference", "containers/*/containerNumber"},
		keys:  []key{{prefix: keyOneBill, path: "transportDocumentReference"}},
		members: []member{{path: "issuer"}, {path: "shipper"}, {path: "consignee"}, {path: "notifyParty"},
			{path: "holder"}, {path: "legs/*/carrier"}},
		facts: map[string]string{"holder": "holder", "number": "transportDocumentReference", "issuer": "issuer"},
	},
	TypeRailNote: {
		roles: []Role{RoleCarrier}, issuer: "carrier",
		named:   []string{"carrier", "consignor", "consignee"},
		refs:    []string{"consignmentNumber"},
		keys:    []key{{prefix: TypeRailNote + ":", path: "consignmentNumber"}},
		members: []member{{path: "carrier"}},
		ship:    &shipRef{paths: []string{"oneBillReference"}, prefixes: oneBillOnly},
		facts:   map[string]string{"number": "consignmentNumber"},
	},
	TypeSeaBill: {
		roles: []Role{RoleCarrier}, issuer: "carrier",
		named:   []string{"carrier", "shipper", "consignee", "notifyParty"},
		refs:    []string{"transportDocumentReference"},
		keys:    []key{{prefix: keySeaBill, path: "transportDocumentReference"}},
		members: []member{{path: "carrier"}},
		ship:    &shipRef{paths: []string{"oneBillReference"}, prefixes: oneBillOnly},
		facts:   map[string]string{"number": "transportDocumentReference"},
	},
	TypeManifest: {
		roles: []Role{RoleCarrier}, issuer: "carrier",
		named:   []string{"carrier", "customsAuthority"},
		refs:    []string{"manifestNumber"},
		keys:    []key{{prefix: TypeManifest + ":", path: "manifestNumber"}},
		members: []member{{path: "customsAuthority", role: RoleCustoms}},
		ship:    &shipRef{paths: []string{"bills/*/transportDocumentReference"}, prefixes: anyBill},
		facts:   map[string]string{"number": "manifestNumber", "manifestType": "manifestType", "customsAuthority": "customsAuthority"},
	},
	TypeDeclaration: {
		roles: []Role{RoleDeclarant}, issuer: "declarant",
		named:   []string{"declarant", "customsAuthority"},
		refs:    []string{"declarationNumber"},
		keys:    []key{{prefix: keyDeclaration, path: "declarationNumber"}},
		members: []member{{path: "declarant"}, {path: "customsAuthority", role: RoleCustoms}},
		ship:    &shipRef{paths: []string{"billReference"}, prefixes: anyBill},
		facts: map[string]string{"number": "declarationNumber", "declarationNumber": "declarationNumber", "declarationKind": "declarationKind",
			"customsAuthority": "customsAuthority", "declarant": "declarant", "office": "customsOffice/UNLocationCode",
			"declarationDateTime": "declarationDateTime"},
	},
	TypeResponse: {
		roles: []Role{RoleCustoms, RoleAgency, RolePort}, issuer: "customsAuthority",
		named: []string{"customsAuthority", "declarant"},
		facts: map[string]string{"number": "responseNumber", "declarationReference": "declarationReference", "status": "status",
			"declarant":    "declarant",
			"responseCode": "responseCode", "responseDateTime": "responseDateTime", "customsAuthority": "customsAuthority"},
		// A response goes back to the declarant, in the declaration's shipments.
		ref: &reference{path: "declarationReference", prefix: keyDeclaration, what: "customs declaration",
			required: true, inheritShipments: true, check: responseMatches, perSender: MaxAnswers,
			parties: func(decl Record) []string { return []string{decl.Facts["declarant"]} }},
	},
	TypeEvent: {
		roles: []Role{RoleCarrier, RoleMTO, RoleTerminal}, issuer: "publisher",
		named: []string{"publisher"},
		name:  &key{prefix: TypeEvent + ":", path: "eventID", perSender: true},
		ship:  &shipRef{paths: []string{"billReference"}, prefixes: anyBill},
		// An event reaches the parties of the one bill it belongs to.
		toBill: true,
		facts: map[string]string{"eventID": "eventID", "eventType": "eventType", "eventCode": "eventCode",
			"eventClassifierCode": "eventClassifierCode", "eventDateTime": "eventDateTime",
			"location": "eventLocation/UNLocationCode", "containerNumber": "containerNumber",
			"retractedEventID": "retractedEventID", "billReference": "billReference", "modeOfTransport": "modeOfTransport"},
	},
}

// first returns the first string at a path, or "".
func first(doc any, path string) string {
	var out string
	walk(doc, path, "", false, func(_, v string) bool { out = v; return false })
	return out
}

// values returns the strings at a slash-separated path, "*" walking arrays.
func values(doc any, path string) []string {
	var out []string
	walk(doc, path, "", false, func(_, v string) bool { out = append(out, v); return true })
	return out
}

// valueAt is a string found in a document and its JSON pointer.
type valueAt struct{ pointer, value string }

// valuesAt returns the non-empty strings at a path with their pointers.
func valuesAt(doc any, path string) []valueAt {
	var out []valueAt
	walk(doc, path, "", true, func(ptr, v string) bool { out = append(out, valueAt{pointer: ptr, value: v}); return true })
	return out
}

// walk calls fn with each non-empty string at path, in document order,
// until fn returns false; it builds their pointers only when ptrs is set
// (most callers want the strings alone). It reports whether fn wants more.
func walk(doc any, path, pointer string, ptrs bool, fn func(pointer, value string) bool) bool {
	head, rest, more := strings.Cut(path, "/")
	at := func(v any, ptr string) bool {
		if more {
			return walk(v, rest, ptr, ptrs, fn)
		}
		if s, ok := v.(string); ok && s != "" {
			return fn(ptr, s)
		}
		return true
	}
	switch t := doc.(type) {
	case map[string]any:
		if v, ok := t[head]; ok {
			ptr := ""
			if ptrs {
				ptr = pointer + "/" + head
			}
			return at(v, ptr)
		}
	case []any:
		if head == "*" {
			for i, v := range t {
				ptr := ""
				if ptrs {
					ptr = pointer + "/" + strconv.Itoa(i)
				}
				if !at(v, ptr) {
					return false
				}
			}
		}
	}
	return true
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
