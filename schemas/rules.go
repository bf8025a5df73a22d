package schemas

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// rules are the domain checks a schema cannot make, one function per type
// that has any.
// They run after the schema on the decoded document and must be defensive:
// the schema may already have found the document's shape wrong.
var rules = map[string]func(doc map[string]any, r *reporter){
	"one-bill":              oneBillRules,
	"rail-consignment-note": railNoteRules,
	"sea-bill":              seaBillRules,
	"cargo-manifest":        manifestRules,
	"customs-declaration":   declarationRules,
	"customs-response":      responseRules,
}

type reporter struct {
	schema map[string]bool // pointers the schema already reported
	ps     *problemSet     // where the rules' problems go, after the schema's
	// limit, when above 0, is how many problems ps may hold: a large
	// document's rules stop there as its schema parts do (a manifest of
	// one container number repeated has a rule problem on every token, and
	// each costs a formatted message). stopped says a problem was dropped.
	limit   int
	stopped bool
}

func (r *reporter) add(pointer, format string, args ...any) {
	if r.schema[pointer] {
		return // one problem per value: the schema's comes first
	}
	if r.limit > 0 && len(r.ps.list) >= r.limit {
		r.stopped = true
		return
	}
	r.ps.add(pointer, fmt.Sprintf(format, args...))
}

// Accessors that answer "absent" for anything of the wrong shape.
func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }
func arr(v any) []any          { a, _ := v.([]any); return a }
func str(v any) (string, bool) { s, ok := v.(string); return s, ok }

func num(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

func when(v any) (time.Time, bool) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, false
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

func place(code string) string {
	if name, ok := Places[code]; ok {
		return fmt.Sprintf("%s (%s)", code, name)
	}
	return code
}

func locode(loc any) (string, bool) { return str(obj(loc)["UNLocationCode"]) }

func idx(i int) string { return strconv.Itoa(i) }

// inOrder reports the later of two times when it is not after the earlier.
func inOrder(r *reporter, earlier, later any, laterPtr, what string) {
	a, ok1 := when(earlier)
	b, ok2 := when(later)
	if ok1 && ok2 && !b.After(a) {
		r.add(laterPtr, "%s must come after %s", what, a.Format(time.RFC3339))
	}
}

// legRules: each leg leaves before it arrives, starts where the one before
// ended and does not leave before that one arrived; the journey runs from
// start to end.
func legRules(doc map[string]any, r *reporter, start, end any, startName, endName string) {
	legs := arr(doc["legs"])
	for i, l := range legs {
		leg := obj(l)
		p := "/legs/" + idx(i)
		inOrder(r, leg["plannedDeparture"], leg["plannedArrival"], p+"/plannedArrival", "the planned arrival")
		from, okFrom := locode(leg["from"])
		if i == 0 {
			if want, ok := locode(start); ok && okFrom && from != want {
				r.add(p+"/from/UNLocationCode", "the first leg should start at the %s %s, not %s", startName, place(want), place(from))
			}
			continue
		}
		prev := obj(legs[i-1])
		if want, ok := locode(prev["to"]); ok && okFrom && from != want {
			r.add(p+"/from/UNLocationCode", "leg %d should start where leg %d ended, %s, not %s", i+1, i, place(want), place(from))
		}
		a, ok1 := when(prev["plannedArrival"])
		d, ok2 := when(leg["plannedDeparture"])
		if ok1 && ok2 && d.Before(a) {
			r.add(p+"/plannedDeparture", "leg %d cannot leave before leg %d arrives (%s)", i+1, i, a.Format(time.RFC3339))
		}
	}
	if n := len(legs); n > 0 {
		to, okTo := locode(obj(legs[n-1])["to"])
		if want, ok := locode(end); ok && okTo && to != want {
			r.add("/legs/"+idx(n-1)+"/to/UNLocationCode", "the last leg should end at the %s %s, not %s", endName, place(want), place(to))
		}
	}
}

// containerRules: container numbers listed once, and every container that
// goods or wagons name is in the list.
func containerRules(doc map[string]any, r *reporter) map[string]bool {
	listed := map[string]bool{}
	for i, c := range arr(doc["containers"]) {
		n, ok := str(obj(c)["containerNumber"])
		if !ok {
			continue
		}
		if listed[n] {
			r.add("/containers/"+idx(i)+"/containerNumber", "container %s is listed twice", n)
		}
		listed[n] = true
	}
	for i, g := range arr(doc["goods"]) {
		if n, ok := str(obj(g)["containerNumber"]); ok && len(listed) > 0 && !listed[n] {
			r.add("/goods/"+idx(i)+"/containerNumber", "container %s is not in this document's containers", n)
		}
	}
	return listed
}

// totalRules: a stated total equals the sum of the items' values.
func totalRules(doc map[string]any, r *reporter, items string, totals map[string]string) {
	for field, total := range totals {
		stated, ok := num(doc[total])
		if !ok {
			continue
		}
		sum, complete := 0.0, !r.schema["/"+items]
		for i, it := range arr(doc[items]) {
			v, ok := num(obj(it)[field])
			// A value the schema refused already says what is wrong; a
			// total built on it would only repeat it.
			if !ok || r.schema["/"+items+"/"+idx(i)+"/"+field] {
				complete = false
				break
			}
			sum += v
		}
		if complete && math.Abs(sum-stated) > 0.0005 {
			r.add("/"+total, "the %s add up to %s, not %s", items, strconv.FormatFloat(sum, 'f', -1, 64), strconv.FormatFloat(stated, 'f', -1, 64))
		}
	}
}

var packagesAndWeight = map[string]string{"numberOfPackages": "totalNumberOfPackages", "grossWeight": "totalGrossWeight"}

func consigneeRule(doc map[string]any, r *reporter) {
	toOrder, _ := doc["isToOrder"].(bool)
	_, named := doc["consignee"]
	switch {
	case toOrder && named:
		r.add("/consignee", "a bill to order names no consignee; remove the consignee or set isToOrder to false")
	case !toOrder && !named:
		r.add("/consignee", "a straight bill names its consignee; give the consignee or set isToOrder to true")
	}
}

func oneBillRules(doc map[string]any, r *reporter) {
	consigneeRule(doc, r)
	legRules(doc, r, doc["placeOfReceipt"], doc["placeOfDelivery"], "place of receipt", "place of delivery")
	var sea []map[string]any
	for _, l := range arr(doc["legs"]) {
		if m, _ := str(obj(l)["modeOfTransport"]); m == "SEA" {
			sea = append(sea, obj(l))
		}
	}
	if len(sea) > 0 {
		pol, ok1 := locode(doc["portOfLoading"])
		from, ok2 := locode(sea[0]["from"])
		if ok1 && ok2 && pol != from {
			r.add("/portOfLoading/UNLocationCode", "the port of loading should be where the first sea leg starts, %s, not %s", place(from), place(pol))
		}
		pod, ok1 := locode(doc["portOfDischarge"])
		to, ok2 := locode(sea[len(sea)-1]["to"])
		if ok1 && ok2 && pod != to {
			r.add("/portOfDischarge/UNLocationCode", "the port of discharge should be where the last sea leg ends, %s, not %s", place(to), place(pod))
		}
	}
	if legs := arr(doc["legs"]); len(legs) > 0 {
		issued, ok1 := when(doc["issueDate"])
		dep, ok2 := when(obj(legs[0])["plannedDeparture"])
		if ok1 && ok2 && issued.After(dep) {
			r.add("/issueDate", "the bill must be issued before the first leg departs (%s)", dep.Format(time.RFC3339))
		}
	}
	containerRules(doc, r)
	totalRules(doc, r, "goods", packagesAndWeight)
}

func railNoteRules(doc map[string]any, r *reporter) {
	inOrder(r, doc["plannedDeparture"], doc["plannedArrival"], "/plannedArrival", "the planned arrival")
	if a, ok := locode(doc["departureStation"]); ok {
		if b, ok := locode(doc["destinationStation"]); ok && a == b {
			r.add("/destinationStation/UNLocationCode", "the destination station must differ from the departure station %s", place(a))
		}
	}
	listed := containerRules(doc, r)
	onWagon := map[string]bool{}
	for i, w := range arr(doc["wagons"]) {
		for j, c := range arr(obj(w)["containerNumbers"]) {
			n, ok := str(c)
			if !ok {
				continue
			}
			p := "/wagons/" + idx(i) + "/containerNumbers/" + idx(j)
			if onWagon[n] {
				r.add(p, "container %s is already loaded on another wagon", n)
			} else if len(listed) > 0 && !listed[n] {
				r.add(p, "container %s is not in this document's containers", n)
			}
			onWagon[n] = true
		}
	}
	totalRules(doc, r, "goods", packagesAndWeight)
}

func seaBillRules(doc map[string]any, r *reporter) {
	consigneeRule(doc, r)
	inOrder(r, doc["plannedDeparture"], doc["plannedArrival"], "/plannedArrival", "the planned arrival")
	if a, ok := locode(doc["portOfLoading"]); ok {
		if b, ok := locode(doc["portOfDischarge"]); ok && a == b {
			r.add("/portOfDischarge/UNLocationCode", "the port of discharge must differ from the port of loading %s", place(a))
		}
	}
	containerRules(doc, r)
	totalRules(doc, r, "goods", packagesAndWeight)
}

func manifestRules(doc map[string]any, r *reporter) {
	inOrder(r, doc["plannedDeparture"], doc["plannedArrival"], "/plannedArrival", "the planned arrival")
	if a, ok := locode(doc["placeOfDeparture"]); ok {
		if b, ok := locode(doc["placeOfArrival"]); ok && a == b {
			r.add("/placeOfArrival/UNLocationCode", "the place of arrival must differ from the place of departure %s", place(a))
		}
	}
	seen := map[string]int{}
	for i, b := range arr(doc["bills"]) {
		for j, c := range arr(obj(b)["containerNumbers"]) {
			n, ok := str(c)
			if !ok {
				continue
			}
			if prev, dup := seen[n]; dup {
				r.add("/bills/"+idx(i)+"/containerNumbers/"+idx(j), "container %s is already listed under bill %d", n, prev+1)
				continue
			}
			seen[n] = i
		}
	}
	totalRules(doc, r, "bills", packagesAndWeight)
}

func declarationRules(doc map[string]any, r *reporter) {
	for i, it := range arr(doc["items"]) {
		item := obj(it)
		p := "/items/" + idx(i)
		if n, ok := num(item["itemNumber"]); ok && n != float64(i+1) {
			r.add(p+"/itemNumber", "items are numbered 1, 2, 3 in order: this one should be %d, not %s", i+1, strconv.FormatFloat(n, 'f', -1, 64))
		}
		net, ok1 := num(item["netWeight"])
		gross, ok2 := num(item["grossWeight"])
		if ok1 && ok2 && net > gross {
			r.add(p+"/netWeight", "the net weight (%s kg) cannot exceed the gross weight (%s kg)", strconv.FormatFloat(net, 'f', -1, 64), strconv.FormatFloat(gross, 'f', -1, 64))
		}
	}
	totalRules(doc, r, "items", map[string]string{"grossWeight": "totalGrossWeight", "customsValue": "totalCustomsValue"})
}

// CUSRESCode maps a customs-response status to its UN/EDIFACT code list 7365
// (processing indicator) code.
func CUSRESCode(status string) string {
	return cusres[status]
}

var cusres = map[string]string{
	"ACCEPTED":         "1",
	"REJECTED":         "3",
	"RELEASED":         "4",
	"UNDER_INSPECTION": "5",
	"HELD":             "7",
}

func responseRules(doc map[string]any, r *reporter) {
	if r.schema["/status"] {
		return // the schema refused the status (e.g. CONDITIONAL in version 1): nothing follows from it
	}
	status, _ := str(doc["status"])
	if code, ok := str(doc["responseCode"]); ok {
		if want := cusres[status]; want != "" && code != want {
			r.add("/responseCode", "status %s is CUSRES code %s, not %s", status, want, code)
		}
	}
	switch status {
	case "REJECTED", "HELD", "UNDER_INSPECTION":
		if len(arr(doc["reasons"])) == 0 {
			r.add("/reasons", "a response with status %s gives at least one reason", status)
		}
	case "CONDITIONAL":
		if len(arr(doc["conditions"])) == 0 {
			r.add("/conditions", "a CONDITIONAL release gives at least one condition")
		}
	}
	if status != "CONDITIONAL" && len(arr(doc["conditions"])) > 0 {
		r.add("/conditions", "conditions go with a CONDITIONAL release, not with %s", status)
	}
}
