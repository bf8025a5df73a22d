package exchange

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/landsea/corridor/schemas"
)

// The single window's routing rules: beyond the parties a document names,
// a rule adds the authorities and operators that must see it (the port's
// maritime safety administration for dangerous goods, the terminal that
// needs the release), by party id or by role and country or place. The
// rules are configuration (adapters/routing reads and checks the file);
// here they are matched. A rule's name goes into the receipt (routedBy),
// so every recipient can be explained.

// Rules is a set of routing rules, as loaded from one file.
type Rules struct {
	Version int    `json:"version"`
	Rules   []Rule `json:"rules"`
	// Source says where they came from (a file, or the embedded default).
	Source string `json:"source,omitempty"`
}

// Rule adds recipients to the documents it matches.
type Rule struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Match       Match    `json:"match"`
	Send        []Target `json:"send"`
	// Decides: the parties this rule adds must each answer a declaration
	// before it is cleared (an agency, a port); otherwise they are told.
	Decides bool `json:"decides,omitempty"`
}

// Match says which documents a rule applies to; an empty field matches all.
type Match struct {
	Types    []string `json:"types,omitempty"`
	Versions []int    `json:"versions,omitempty"`
	Kinds    []string `json:"kinds,omitempty"`  // declaration kinds: EXPORT, IMPORT, TRANSIT
	Borders  []string `json:"border,omitempty"` // countries: of the customs authority or customs office
	// HS are code patterns: a chapter ("85"), heading ("8507"),
	// subheading ("8507.60"), or a range of them ("3601-3604"); one of the
	// document's codes must match one.
	HS             []string `json:"hs,omitempty"`
	DangerousGoods *bool    `json:"dangerousGoods,omitempty"`
	Places         []string `json:"places,omitempty"` // UN/LOCODEs: the document's or its shipment's route
}

// Target is who a rule sends to: a party by id, or every party with a
// role (in a country, and/or operating at a place or at a place of the
// shipment's route).
type Target struct {
	Party      string `json:"party,omitempty"`
	Role       Role   `json:"role,omitempty"`
	Country    string `json:"country,omitempty"`
	Place      string `json:"place,omitempty"`
	RoutePlace string `json:"routePlace,omitempty"` // placeOfReceipt, portOfLoading, portOfDischarge or placeOfDelivery
}

// RoutePlaces are the places of a one bill's route a target may name.
var RoutePlaces = []string{"placeOfReceipt", "portOfLoading", "portOfDischarge", "placeOfDelivery"}

func (t Target) String() string {
	if t.Party != "" {
		return t.Party
	}
	s := "every " + string(t.Role)
	if t.Country != "" {
		s += " of " + t.Country
	}
	if t.Place != "" {
		s += " at " + t.Place
	}
	if t.RoutePlace != "" {
		s += " at the " + t.RoutePlace
	}
	return s
}

// DocFacts is what rules match on, read from a document and its shipment.
type DocFacts struct {
	Type           string
	Version        int
	Kind           string
	Borders        []string
	HS             []string // digits only
	DangerousGoods bool
	Places         []string
	Route          *Plan // the shipment's one bill, when known
}

// FactsOf reads the routing facts of a validated document. plan is its
// shipment's one bill (nil when unknown); authorityCountry the country
// of the customs authority it names, if known.
func FactsOf(typ string, version int, f map[string]any, plan *Plan, authorityCountry string) DocFacts {
	df := DocFacts{Type: typ, Version: version, Kind: first(f, "declarationKind"), Route: plan}
	addCountry := func(c string) {
		if c != "" && !slices.Contains(df.Borders, c) {
			df.Borders = append(df.Borders, c)
		}
	}
	addCountry(authorityCountry)
	if office := first(f, "customsOffice/UNLocationCode"); len(office) >= 2 {
		addCountry(office[:2])
	}
	for _, p := range []string{"items/*/HSCode", "goods/*/HSCode"} {
		for _, v := range values(f, p) {
			df.HS = append(df.HS, strings.ReplaceAll(v, ".", ""))
		}
	}
	for _, p := range []string{"items/*/dangerousGoods", "goods/*/dangerousGoods"} {
		if len(walkAny(f, p)) > 0 {
			df.DangerousGoods = true
		}
	}
	df.Places = locodes(f, nil)
	if plan != nil {
		for _, p := range append([]string{plan.PlaceOfReceipt, plan.PortOfLoading, plan.PortOfDischarge, plan.PlaceOfDelivery}, legPlaces(plan)...) {
			if p != "" && !slices.Contains(df.Places, p) {
				df.Places = append(df.Places, p)
			}
		}
	}
	return df
}

func legPlaces(p *Plan) []string {
	var out []string
	for _, l := range p.Legs {
		out = append(out, l.From, l.To)
	}
	return out
}

// locodes collects every UNLocationCode in a document.
func locodes(v any, out []string) []string {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			if s, ok := x.(string); ok && k == "UNLocationCode" && !slices.Contains(out, s) {
				out = append(out, s)
			}
			out = locodes(x, out)
		}
	case []any:
		for _, x := range t {
			out = locodes(x, out)
		}
	}
	return out
}

// walkAny returns the values (of any kind) at a path, "*" walking arrays.
func walkAny(doc any, path string) []any {
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
	if !more {
		return next
	}
	var out []any
	for _, n := range next {
		out = append(out, walkAny(n, rest)...)
	}
	return out
}

// Matches reports whether a rule applies to a document.
func (m Match) Matches(df DocFacts) bool {
	anyOf := func(want []string, have ...string) bool {
		return len(want) == 0 || slices.ContainsFunc(have, func(h string) bool { return slices.Contains(want, h) })
	}
	switch {
	case !anyOf(m.Types, df.Type):
		return false
	case len(m.Versions) > 0 && !slices.Contains(m.Versions, df.Version):
		return false
	case !anyOf(m.Kinds, df.Kind):
		return false
	case !anyOf(m.Borders, df.Borders...):
		return false
	case m.DangerousGoods != nil && *m.DangerousGoods != df.DangerousGoods:
		return false
	case !anyOf(m.Places, df.Places...):
		return false
	case len(m.HS) > 0 && !slices.ContainsFunc(df.HS, func(code string) bool {
		return slices.ContainsFunc(m.HS, func(p string) bool { return HSMatches(p, code) })
	}):
		return false
	}
	return true
}

// HSMatches reports whether an HS code (digits) falls under a pattern: a
// prefix of 2 to 10 digits (dots allowed, as in "8507.60"), or a range of
// two prefixes of one length ("3601-3604").
func HSMatches(pattern, code string) bool {
	pattern = strings.ReplaceAll(pattern, ".", "")
	lo, hi, isRange := strings.Cut(pattern, "-")
	if !isRange {
		return strings.HasPrefix(code, lo)
	}
	if len(code) < len(lo) || len(lo) != len(hi) {
		return false
	}
	c := code[:len(lo)]
	return lo <= c && c <= hi
}

// Hit is a rule that matched, with the parties it adds.
type Hit struct {
	Rule    string   `json:"rule"`
	Targets []string `json:"targets"` // as written, e.g. "every port at the portOfLoading"
	Parties []string `json:"parties"` // resolved
	Decides bool     `json:"decides"`
	Missing []string `json:"missing,omitempty"` // targets that name no party now
}

// Route returns the rules that match a document and the parties they add,
// resolving roles against parties (nil: not resolved, as offline without
// a parties list).
func (r *Rules) Route(df DocFacts, parties []Party) []Hit {
	if r == nil {
		return nil
	}
	var hits []Hit
	for _, rule := range r.Rules {
		if !rule.Match.Matches(df) {
			continue
		}
		h := Hit{Rule: rule.Name, Decides: rule.Decides, Parties: []string{}}
		for _, t := range rule.Send {
			h.Targets = append(h.Targets, t.String())
			found := t.resolve(df, parties)
			if len(found) == 0 {
				h.Missing = append(h.Missing, t.String())
			}
			for _, p := range found {
				if !slices.Contains(h.Parties, p) {
					h.Parties = append(h.Parties, p)
				}
			}
		}
		hits = append(hits, h)
	}
	return hits
}

func (t Target) resolve(df DocFacts, parties []Party) []string {
	if t.Party != "" {
		if parties == nil || slices.ContainsFunc(parties, func(p Party) bool { return p.ID == t.Party && !p.Disabled }) {
			return []string{t.Party}
		}
		return nil
	}
	place := t.Place
	if t.RoutePlace != "" {
		if df.Route == nil {
			return nil
		}
		place = map[string]string{"placeOfReceipt": df.Route.PlaceOfReceipt, "portOfLoading": df.Route.PortOfLoading,
			"portOfDischarge": df.Route.PortOfDischarge, "placeOfDelivery": df.Route.PlaceOfDelivery}[t.RoutePlace]
		if place == "" {
			return nil
		}
	}
	var out []string
	for _, p := range parties {
		if !p.Disabled && p.Has(t.Role) && (t.Country == "" || p.Country == t.Country) && (place == "" || slices.Contains(p.Places, place)) {
			out = append(out, p.ID)
		}
	}
	return out
}

// SetRules replaces the routing rules at once: a request already routing
// keeps the set it started with; the next one takes the new set.
func (s *Service) SetRules(r *Rules) { s.rules.Store(r) }

// RoutingRules returns the rules in force.
func (s *Service) RoutingRules() *Rules { return s.rules.Load() }

// RoutingRulesFor answers GET /v1/routes: operators (and customs and
// agencies, who act on what the rules send) read the rules.
func (s *Service) RoutingRulesFor(caller Party) (*Rules, error) {
	if !caller.Has(RoleOperator, RoleCustoms, RoleAgency, RolePort) {
		return nil, Errorf(CodeForbidden, "the routing rules are shown to operators, customs, agencies and ports")
	}
	r := s.rules.Load()
	if r == nil {
		r = &Rules{Version: 1, Rules: []Rule{}, Source: "none"}
	}
	return r, nil
}

// allParties lists the parties for routing by role, from a short-lived cache.
func (s *Service) allParties(ctx context.Context) ([]Party, error) {
	if ps, ok := s.partyList.Get("all"); ok {
		return ps, nil
	}
	ps, err := s.Parties.ListParties(ctx)
	if err != nil {
		return nil, fmt.Errorf("list parties: %w", err)
	}
	s.partyList.Add("all", ps)
	return ps, nil
}

// route applies the routing rules to a document about to be archived: the
// parties they add become recipients and members of its shipments, the
// rules' names go into the receipt, and for a declaration the parties of
// deciding rules join its customs authority among those that must answer.
func (s *Service) route(ctx context.Context, rt route, doc *schemas.Document, placed []placed, rec *Record) ([]string, error) {
	f := doc.Fields
	var plan *Plan
	if rec.Type == TypeOneBill {
		plan = rec.Plan
	} else if len(placed) > 0 {
		plan = placed[0].state.bill.Plan
	}
	if rec.Type == TypeDeclaration {
		rec.Deciders = []string{first(f, "customsAuthority")}
	}
	rules := s.rules.Load()
	if rules == nil || len(rules.Rules) == 0 {
		return nil, nil
	}
	country := ""
	if a := first(f, "customsAuthority"); a != "" {
		p, ok, err := s.party(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("look up %s: %w", a, err)
		}
		if ok {
			country = p.Country
		}
	}
	parties, err := s.allParties(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, h := range rules.Route(FactsOf(doc.Type, doc.Version, f, plan, country), parties) {
		if h.Decides && rec.Type == TypeDeclaration && len(h.Missing) > 0 {
			// Fail closed: a declaration the rules say someone must decide on
			// is not taken while nobody can, or customs alone would clear it.
			return nil, Errorf(CodeConflict, "routing rule %s says %s must decide on this declaration, and no party of this gateway is that; the corridor's operator must add it",
				h.Rule, strings.Join(h.Missing, " and "))
		}
		if len(h.Parties) == 0 {
			continue
		}
		rec.RoutedBy = append(rec.RoutedBy, h.Rule)
		for _, p := range h.Parties {
			if p == rec.Sender || slices.Contains(out, p) {
				continue
			}
			out = append(out, p)
			if !slices.Contains(rec.Members, p) {
				rec.Members = append(rec.Members, p)
			}
			if h.Decides && rec.Type == TypeDeclaration && !slices.Contains(rec.Deciders, p) {
				rec.Deciders = append(rec.Deciders, p)
			}
		}
	}
	slices.Sort(rec.Members)
	return out, nil
}

// Explanation is what the routing of a document comes to, as `corridor
// routes explain` prints it: the parties it names, the rules that match
// and whom they add, and so its recipients and, for a declaration, who
// must decide on it.
type Explanation struct {
	Type       string   `json:"type"`
	Version    int      `json:"schemaVersion"`
	Sender     string   `json:"sender"`
	Named      []string `json:"named"`
	Hits       []Hit    `json:"rules"`
	RoutedBy   []string `json:"routedBy"`
	Recipients []string `json:"recipients"`
	Deciders   []string `json:"deciders,omitempty"`
	// Refused says why the gateway would refuse the document (a deciding
	// rule whose parties do not exist), when parties were given.
	Refused string `json:"refused,omitempty"`
}

// Explain routes a validated document offline, the way Submit does:
// parties (nil: roles are not resolved) and the shipment's one bill plan
// (nil: rules on the route's places cannot match) stand in for what the
// gateway would look up. Parties a referenced document adds (an event's
// one bill parties, a response's declarant) are not known offline.
func Explain(rules *Rules, typ string, version int, f map[string]any, plan *Plan, parties []Party) Explanation {
	rt := routes[typ]
	e := Explanation{Type: typ, Version: version, Sender: first(f, rt.issuer), Named: valuesAll(f, rt.named), RoutedBy: []string{}}
	if typ == TypeOneBill {
		plan = planOf(f)
	}
	country := ""
	if i := slices.IndexFunc(parties, func(p Party) bool { return p.ID == first(f, "customsAuthority") }); i >= 0 {
		country = parties[i].Country
	}
	if typ == TypeDeclaration {
		e.Deciders = []string{first(f, "customsAuthority")}
	}
	add := func(p string) {
		if p != e.Sender && !slices.Contains(e.Recipients, p) {
			e.Recipients = append(e.Recipients, p)
		}
	}
	for _, p := range e.Named {
		add(p)
	}
	e.Hits = rules.Route(FactsOf(typ, version, f, plan, country), parties)
	for _, h := range e.Hits {
		if h.Decides && typ == TypeDeclaration && len(h.Missing) > 0 && parties != nil && e.Refused == "" {
			e.Refused = fmt.Sprintf("rule %s needs a decision from %s, which no party is", h.Rule, strings.Join(h.Missing, " and "))
		}
		if len(h.Parties) > 0 {
			e.RoutedBy = append(e.RoutedBy, h.Rule)
		}
		for _, p := range h.Parties {
			add(p)
			if h.Decides && typ == TypeDeclaration && !slices.Contains(e.Deciders, p) {
				e.Deciders = append(e.Deciders, p)
			}
		}
	}
	slices.Sort(e.Recipients)
	return e
}

// PlanOf reads a one bill's route and legs from its validated fields.
func PlanOf(f map[string]any) *Plan { return planOf(f) }
