package exchange

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/errgroup"

	"github.com/landsea/corridor/schemas"
)

// Service runs the corridor's use cases over the ports.
type Service struct {
	Archive Archive
	Queue   Queue
	Index   Index
	Parties Parties
	Signer  *Signer
	Logger  *slog.Logger
	Now     func() time.Time
	// URLCheck refuses a webhook URL the gateway must not call (set by
	// adapters/webhook's policy); nil accepts any.
	URLCheck func(ctx context.Context, url string) error

	keys      *expirable.LRU[[32]byte, cachedKey] // checked keys (by hash) and their party
	kc        keyCache
	partyList *expirable.LRU[string, []Party] // every party, for routing by role
	rules     atomic.Pointer[Rules]
	parties   *expirable.LRU[string, Party] // parties known to exist

	revocations Revocations
	outbox      Outbox
	deliveries  *lru.Cache[string, []byte] // see deliveries.go
	cold        *coldRecords               // records read from the archive, see cold.go
	// Failpoint, for tests only, is called at named points of a
	// submission ("after-archive"); nil in production.
	Failpoint func(point string)
}

// CacheTTL bounds how long a checked key or a known party is trusted
// without a look-up: a revoked key stops working on every gateway within
// it, and within a second where revocations are announced (SetRevocations).
const CacheTTL = 10 * time.Second

// NewService returns a service over the given ports.
func NewService(a Archive, q Queue, i Index, p Parties, s *Signer, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{Archive: a, Queue: q, Index: i, Parties: p, Signer: s, Logger: log, Now: time.Now,
		keys:    expirable.NewLRU[[32]byte, cachedKey](10000, nil, CacheTTL),
		parties: expirable.NewLRU[string, Party](100000, nil, CacheTTL), partyList: expirable.NewLRU[string, []Party](1, nil, CacheTTL),
		deliveries: newDeliveryCache(), cold: newColdRecords(coldReadsInFlight, coldCacheBytes)}
}

// Authenticate returns the party that owns key, or an Unauthorized error.
func (s *Service) Authenticate(ctx context.Context, key string) (Party, error) {
	unauthorized := Errorf(CodeUnauthorized, "the API key is missing, malformed, unknown or revoked")
	id, secret, err := ParseKey(key)
	if err != nil {
		return Party{}, unauthorized
	}
	ck := sha256.Sum256([]byte(key))
	if p, ok := s.cachedKey(ck); ok {
		return p, nil
	}
	gen, at := s.keyGen(), time.Now()
	k, err := s.Parties.Key(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && (k.Revoked || !k.Matches(secret))) {
		return Party{}, unauthorized
	}
	if err != nil {
		return Party{}, fmt.Errorf("look up key: %w", err)
	}
	p, err := s.Parties.Party(ctx, k.Party)
	if errors.Is(err, ErrNotFound) || (err == nil && p.Disabled) {
		return Party{}, unauthorized
	}
	if err != nil {
		return Party{}, fmt.Errorf("look up party: %w", err)
	}
	s.cacheKey(ck, p, gen, at)
	return p, nil
}

// Submission is a document as it arrives.
type Submission struct {
	Type    string
	Version int // 0: the newest
	// Body is kept once archived (the delivery cache): it must not change
	// after Submit (the HTTP adapter copies fasthttp's reused buffer).
	Body           []byte
	IdempotencyKey string
	// Amends is the id of the revision this document corrects (its
	// sender's own, the latest of its number), or "".
	Amends string
}

var idemKeyRE = regexp.MustCompile(`^[\x21-\x7e]{1,255}$`)

// Validate checks a document without storing or sending anything.
// Validation runs under the schemas' time budget and ctx, whichever ends first.
func (s *Service) Validate(ctx context.Context, typ string, version int, body []byte) (*schemas.Document, error) {
	ctx, cancel := context.WithTimeout(ctx, schemas.Budget)
	defer cancel()
	doc, err := schemas.ValidateContext(ctx, typ, version, body)
	if err != nil {
		return nil, validationError(err)
	}
	return doc, nil
}

// Submit validates, authorizes, archives, indexes and delivers a document,
// in that order, and returns its signed receipt. created is false when the
// same submission was made before: its receipt comes back, and nobody
// receives the document twice.
func (s *Service) Submit(ctx context.Context, caller Party, sub Submission) (rcpt Receipt, created bool, err error) {
	if sub.IdempotencyKey != "" && !idemKeyRE.MatchString(sub.IdempotencyKey) {
		return Receipt{}, false, Errorf(CodeMalformed, "the Idempotency-Key must be 1 to 255 printable ASCII characters")
	}
	rt, ok := routes[sub.Type]
	if !ok {
		return Receipt{}, false, Errorf(CodeNotFound, "unknown document type %q; GET /v1/schemas lists them", sub.Type)
	}
	if !caller.Has(rt.roles...) {
		return Receipt{}, false, Errorf(CodeForbidden, "a %s is submitted by a party with role %s", sub.Type, joinRoles(rt.roles))
	}
	doc, err := s.Validate(ctx, sub.Type, sub.Version, sub.Body)
	if err != nil {
		return Receipt{}, false, err
	}
	if issuer, _ := doc.Fields[rt.issuer].(string); issuer != caller.ID {
		return Receipt{}, false, &Error{Code: CodeForbidden,
			Message:  fmt.Sprintf("you are %s, but the document's %s is %q: a party submits only what it issues", caller.ID, rt.issuer, issuer),
			Problems: []schemas.Problem{{Pointer: "/" + rt.issuer, Detail: "must be the submitting party, " + caller.ID}}}
	}
	sum := sha256.Sum256(sub.Body)
	rec := Record{
		Receipt: Receipt{ID: DocumentID(caller.ID, sub.IdempotencyKey, sum[:]), Type: doc.Type, SchemaVersion: doc.Version,
			Sender: caller.ID, SHA256: hex.EncodeToString(sum[:])},
		IdempotencyKey: sub.IdempotencyKey, Size: int64(len(sub.Body)), Format: RecordFormat,
	}
	name, number := rt.nameOf(caller.ID, doc.Fields)
	if name != "" {
		rec.ID = NamedDocumentID(name)
	}
	// A submission seen before gets its receipt again, and its delivery is
	// completed if an earlier attempt was cut short (unless it was long
	// ago: settled). The index answers (no archive read on the way in: the
	// archive write below is the only archive request of a new document);
	// one archived but not indexed is found by that write, which refuses to
	// overwrite it.
	if prev, err := s.Index.Doc(ctx, rec.ID); err == nil {
		return s.seen(ctx, prev, rec.SHA256)
	} else if !errors.Is(err, ErrNotFound) {
		return Receipt{}, false, fmt.Errorf("check index: %w", err)
	}
	if prev, ok, err := s.coldReplay(ctx, rt, doc.Fields, rec, sub.Amends); err != nil {
		return Receipt{}, false, err
	} else if ok {
		return s.seen(ctx, prev, rec.SHA256)
	}
	if prev, ok, err := s.namedBefore(ctx, rt, name, number, rec); err != nil {
		return Receipt{}, false, err
	} else if ok {
		return s.seen(ctx, prev, rec.SHA256)
	}
	var prev *Record
	if sub.Amends != "" {
		if prev, err = s.amended(ctx, caller, sub); err != nil {
			return s.refused(ctx, rec, err)
		}
	}
	rec.ReceivedAt = s.Now().UTC().Truncate(time.Microsecond)
	// The natural keys this attempt claims anew (not those an earlier
	// attempt of this document claimed: it may be archived) are given up
	// if it fails before its archive write, or finds another document
	// archived under its id: another document may take them at once, not
	// only once the claims are stale.
	var claims []claim
	written := false  // this attempt's document may be in the archive (or its AMEND in the title chain)
	var found *Record // the record archived under this id, once read
	defer func() {
		if err != nil && !written {
			s.release(ctx, rec.ID, claims, found)
		}
	}()
	if err := s.resolve(ctx, caller, rt, doc, &rec, prev, &claims); err != nil {
		return s.refused(ctx, rec, err)
	}
	rec.Signature = s.Signer.Sign(rec.Receipt)
	// An amended one bill takes its place in the title chain before it is
	// archived: a title action racing it wins or loses the chain's next
	// place cleanly, and a retry of this submission finds its AMEND there
	// (or, where the index forgets records, coldReplay found it archived).
	written = rec.amendsTitle() // (its AMEND may be in the chain)
	if err := s.amendTitle(ctx, rec); err != nil {
		return Receipt{}, false, err
	}
	wasMarked, err := s.mark(ctx, rec.ID)
	if err != nil {
		return Receipt{}, false, err
	}
	written = true
	if err := s.Archive.Put(ctx, rec, sub.Body); errors.Is(err, ErrExists) {
		// A concurrent twin won the race, or the index no longer holds the
		// record of a submission seen long ago that has no natural key (a
		// customs response, cold.go): settled as above, from the mark found
		// before ours (which a late retry running at the same time, or one
		// failed after its mark, also leaves: then it is delivered again).
		// Ours was not written: if the read below fails (its caller gone,
		// say), its claims are released but those the archived document
		// holds (release reads it).
		written = rec.amendsTitle()
		prev, err := s.archivedRecord(ctx, rec.ID)
		if err != nil {
			return Receipt{}, false, fmt.Errorf("read earlier submission: %w", err)
		}
		// Another document (ours is refused below) unless its AMEND went to the chain.
		written, found = prev.SHA256 == rec.SHA256 || rec.amendsTitle(), &prev
		if s.forgotten(prev) && !wasMarked {
			s.unmark(ctx, rec.ID)
			return s.replay(ctx, prev, rec.SHA256, false)
		}
		return s.replay(ctx, prev, rec.SHA256, true)
	} else if err != nil {
		return Receipt{}, false, fmt.Errorf("archive document: %w", err)
	}
	s.failpoint("after-archive")
	s.remember(rec.ID, sub.Body)
	if err := s.deliver(ctx, rec); err != nil {
		return Receipt{}, false, err
	}
	if err := s.clear(ctx, rec); err != nil {
		return Receipt{}, false, err
	}
	s.unmark(ctx, rec.ID)
	s.Logger.InfoContext(ctx, "document submitted", "id", rec.ID, "type", rec.Type, "version", rec.SchemaVersion,
		"sender", rec.Sender, "recipients", len(rec.Recipients), "bytes", rec.Size)
	return rec.Receipt, true, nil
}

// refused answers a submission that the gateway's state refuses. Where
// the index forgets records, it may be a late retry of one accepted long
// ago whose record the index no longer holds (cold.go), refused by the state as it is now (its number
// since taken by its amendment, a grant since revoked): the archive tells,
// and then it gets its receipt as a replay does.
func (s *Service) refused(ctx context.Context, rec Record, refusal error) (Receipt, bool, error) {
	var e *Error
	if !errors.As(refusal, &e) || !s.forgetsRecords() {
		return Receipt{}, false, refusal
	}
	prev, err := s.archivedRecord(ctx, rec.ID)
	if errors.Is(err, ErrNotFound) { // a new document, refused
		return Receipt{}, false, refusal
	} else if err != nil {
		return Receipt{}, false, fmt.Errorf("read archived record: %w", err)
	}
	return s.seen(ctx, prev, rec.SHA256)
}

// seen answers a submission seen before (prev): its receipt, after
// completing its delivery unless that is settled.
func (s *Service) seen(ctx context.Context, prev Record, sha string) (Receipt, bool, error) {
	settled, err := s.settled(ctx, prev)
	if err != nil {
		return Receipt{}, false, err
	}
	return s.replay(ctx, prev, sha, !settled)
}

// replay answers a submission seen before with its receipt, after
// completing its delivery when complete.
func (s *Service) replay(ctx context.Context, prev Record, sha string, complete bool) (Receipt, bool, error) {
	if prev.SHA256 != sha {
		// Other bytes under a document's id: its number taken, if the id is
		// the number's (the number is a fact of its record), else its key
		// used again.
		if n := routes[prev.Type].name; n != nil && prev.ID == NamedDocumentID(n.of(prev.Sender, prev.Facts[n.path])) {
			return Receipt{}, false, taken(prev.Type, n.path, prev.Facts[n.path])
		}
		return Receipt{}, false, &Error{Code: CodeInvalid,
			Message:  fmt.Sprintf("the Idempotency-Key %q was used before for a different document (%s)", prev.IdempotencyKey, prev.ID),
			Problems: []schemas.Problem{{Pointer: "", Detail: "use a new Idempotency-Key for a different document"}}}
	}
	if !complete {
		return prev.Receipt, false, nil
	}
	if err := s.complete(ctx, prev); err != nil {
		return Receipt{}, false, err
	}
	s.unmark(ctx, prev.ID)
	return prev.Receipt, false, nil
}

// settled reports whether an indexed document's delivery ended long ago:
// it was received longer ago than the queue remembers what it delivered
// (queued again, it would reach its recipients twice), and the outbox no
// longer marks it (a delivery cut short stays marked until it is
// completed, by a sweep or by this retry). A submission retried that late
// only gets its receipt. Without an outbox nothing is settled.
func (s *Service) settled(ctx context.Context, rec Record) (bool, error) {
	if !s.forgotten(rec) {
		return false, nil
	}
	marked, err := s.outbox.Marked(ctx, rec.ID)
	if err != nil {
		return false, fmt.Errorf("read outbox: %w", err)
	}
	return !marked, nil
}

// forgotten reports whether a document was received longer ago than the
// queue remembers what it delivered, with an outbox to tell whether its
// delivery ended (see settled).
func (s *Service) forgotten(rec Record) bool {
	q, ok := s.Queue.(ForgetfulQueue)
	return ok && s.outbox != nil && s.Now().Sub(rec.ReceivedAt) > q.ForgetsAfter()
}

// complete finishes the delivery of an archived record: index, queue,
// title and clearance, each idempotent. A retried submission and the
// outbox's sweep both end here.
func (s *Service) complete(ctx context.Context, rec Record) error {
	if rec.Format < RecordFormat {
		up, err := s.upgrade(ctx, rec)
		if err != nil {
			return fmt.Errorf("upgrade %s: %w", rec.ID, err)
		}
		rec = up
	}
	if err := s.deliver(ctx, rec); err != nil {
		return err
	}
	if err := s.amendTitle(ctx, rec); err != nil {
		return err
	}
	return s.clear(ctx, rec)
}

// deliver indexes a record and queues it for every recipient; each step is
// idempotent, so it can be run again after a failure.
func (s *Service) deliver(ctx context.Context, rec Record) error {
	if err := s.Index.Add(ctx, rec, Entries(rec)); err != nil {
		return fmt.Errorf("index document: %w", err)
	}
	if len(rec.Recipients) == 0 {
		return nil
	}
	if err := s.Queue.Enqueue(ctx, MessageOf(rec), rec.Recipients...); err != nil {
		return fmt.Errorf("queue document: %w", err)
	}
	return nil
}

// sealed is the signed record of a document the gateway writes itself (a
// grant, a title entry, a clearance): the body's digest and size, and a
// signature over the receipt. The caller adds its shipments, facts and
// members, which the signature does not cover.
func (s *Service) sealed(id, typ, sender string, at time.Time, to []string, body []byte) Record {
	sum := sha256.Sum256(body)
	rec := Record{Receipt: Receipt{ID: id, Type: typ, SchemaVersion: 1, Sender: sender, SHA256: hex.EncodeToString(sum[:]),
		ReceivedAt: at, Recipients: to}, Format: RecordFormat, Size: int64(len(body))}
	rec.Signature = s.Signer.Sign(rec.Receipt)
	return rec
}

// resolve fills in what the record needs from the document and the
// gateway's state, refusing it before anything is written: references
// that must exist, the shipments it joins (and whether the sender may
// post to them), natural keys, facts, members and recipients.
func (s *Service) resolve(ctx context.Context, caller Party, rt route, doc *schemas.Document, rec *Record, prev *Record, claims *[]claim) error {
	f := doc.Fields
	named := valuesAll(f, rt.named)
	var target *Record
	if r := rt.ref; r != nil {
		ref := first(f, r.path)
		t, err := s.referenced(ctx, r.prefix+NormalizeRef(ref))
		switch {
		case errors.Is(err, ErrNotFound) && r.required:
			return r.missing(ref)
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return err
		default:
			target = &t
		}
	}
	// Membership first: what a refused sender learns of the reference
	// below must not depend on the shipment it is not part of.
	placed, err := s.place(ctx, caller, rt, f, target, rec)
	if err != nil {
		return err
	}
	if target != nil {
		if rec.Type == TypeResponse {
			rec.Facts = map[string]string{"declarationId": target.ID} // the revision answered
		}
		if c := rt.ref.check; c != nil {
			if err := c(f, *target); err != nil {
				return err
			}
		}
		if p := rt.ref.parties; p != nil {
			named = append(named, p(*target)...)
		}
	}
	for _, p := range placed {
		rec.Shipments = append(rec.Shipments, p.link)
		if rt.toBill {
			named = append(named, p.state.bill.Sender)
			named = append(named, p.state.bill.Recipients...)
		}
	}
	if rec.Members, err = s.members(ctx, rt, f); err != nil {
		return err
	}
	routed, err := s.route(ctx, rt, doc, placed, rec)
	if err != nil {
		return err
	}
	named = append(named, routed...)
	if rec.Type == TypeOneBill {
		openBill(f, rec)
	}
	if prev != nil {
		if err := s.revise(ctx, rt, f, rec, prev, claims); err != nil {
			return err
		}
		named = append(named, prev.Recipients...)
	}
	for _, k := range rt.keys {
		for _, v := range values(f, k.path) {
			key := k.of(rec.Sender, v)
			if prev != nil && slices.Contains(prev.Keys, key) {
				rec.Keys = append(rec.Keys, key) // the amendment takes its number over when indexed
				continue
			}
			holder, err := s.claimKey(ctx, key, rec.ID, claims)
			if err != nil {
				return err
			}
			if holder != rec.ID {
				return taken(doc.Type, k.path, v)
			}
			rec.Keys = append(rec.Keys, key)
		}
	}
	rt.derive(f, rec)
	if rec.Type == TypeEvent && len(placed) > 0 && milestone(rec.Facts, rec.Sender, placed[0].state.bill.Plan, placed[0].state.bill.Sender) {
		rec.Facts["milestone"] = "true"
	}
	return s.recipients(ctx, named, rec)
}

// taken refuses a document whose number (at path) another document holds.
// The holder's id is not said: it may be another party's document.
func taken(typ, path, v string) error {
	return &Error{Code: CodeConflict, Message: fmt.Sprintf("the gateway already holds, or is receiving, a %s %s", typ, v),
		Problems: []schemas.Problem{{Pointer: "/" + path, Detail: fmt.Sprintf("%s is taken", v)}}}
}

// namedBefore finds, for a document named by its number (route.name), the
// document that claimed that number as a natural key before documents
// were named by it (the index keeps such claims): the same bytes sent
// again get that document's receipt (ok), other bytes are refused as a
// number taken. A claim never confirmed (its gateway, of an earlier build,
// died) is that of a document archived (then as above), still on its way
// (refused until the claim is stale) or never archived.
// name is the document's (route.nameOf), number the number in it.
func (s *Service) namedBefore(ctx context.Context, rt route, name, number string, rec Record) (Record, bool, error) {
	if name == "" {
		return Record{}, false, nil
	}
	holder, since, err := s.Index.Holder(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return Record{}, false, nil
	} else if err != nil {
		return Record{}, false, fmt.Errorf("look up %s %s: %w", rec.Type, number, err)
	}
	prev, err := s.record(ctx, holder)
	switch {
	case errors.Is(err, ErrNotFound) && !since.IsZero() && since.Before(s.Now().Add(-ClaimTimeout)):
		return Record{}, false, nil // a claim of an attempt that never reached the archive
	case err != nil && !errors.Is(err, ErrNotFound):
		return Record{}, false, fmt.Errorf("read record %s: %w", holder, err)
	case err == nil && prev.SHA256 == rec.SHA256:
		return prev, true, nil
	}
	return Record{}, false, taken(rec.Type, rt.name.path, number)
}

// derive sets what a record takes from its fields alone: the references
// it carries (normalised, once each) and its facts. Submit and the
// upgrade of an old record both call it, so both read a document alike.
func (rt route) derive(f map[string]any, rec *Record) {
	for _, r := range valuesAll(f, rt.refs) {
		if n := NormalizeRef(r); n != "" && !slices.Contains(rec.Refs, n) {
			rec.Refs = append(rec.Refs, n)
		}
	}
	for name, path := range rt.facts {
		if v := first(f, path); v != "" {
			if rec.Facts == nil {
				rec.Facts = map[string]string{}
			}
			rec.Facts[name] = v
		}
	}
}

// openBill makes a one bill the opening document of its own shipment,
// with the route and legs it plans.
func openBill(f map[string]any, rec *Record) {
	rec.Shipments = []Link{{Ref: NormalizeRef(first(f, "transportDocumentReference")), Doc: rec.ID, Opened: rec.ReceivedAt}}
	rec.Plan = planOf(f)
}

// planOf reads a one bill's route and legs.
func planOf(f map[string]any) *Plan {
	p := &Plan{PlaceOfReceipt: first(f, "placeOfReceipt/UNLocationCode"), PortOfLoading: first(f, "portOfLoading/UNLocationCode"),
		PortOfDischarge: first(f, "portOfDischarge/UNLocationCode"), PlaceOfDelivery: first(f, "placeOfDelivery/UNLocationCode"),
		Containers: values(f, "containers/*/containerNumber"), Legs: []LegPlan{}, Consignee: first(f, "consignee")}
	p.ToOrder, _ = f["isToOrder"].(bool)
	legs, _ := f["legs"].([]any)
	for _, l := range legs {
		vehicle := first(l, "trainNumber")
		if v := first(l, "vesselName"); v != "" {
			vehicle = strings.TrimSpace(v + " " + first(l, "voyageNumber"))
		}
		p.Legs = append(p.Legs, LegPlan{Mode: first(l, "modeOfTransport"), From: first(l, "from/UNLocationCode"),
			To: first(l, "to/UNLocationCode"), Carrier: first(l, "carrier"), Vehicle: vehicle,
			PlannedDeparture: first(l, "plannedDeparture"), PlannedArrival: first(l, "plannedArrival")})
	}
	return p
}

func (s *Service) referenced(ctx context.Context, key string) (Record, error) {
	id, err := s.Index.Lookup(ctx, key)
	if err != nil {
		return Record{}, err
	}
	return s.record(ctx, id)
}

// responseMatches refuses a response whose authority or declarant is not
// the declaration's. The message names only what the sender wrote: a
// customs party learns nothing of a declaration not addressed to it.
func responseMatches(f map[string]any, decl Record) error {
	if got, _ := f["customsAuthority"].(string); !slices.Contains(deciders(decl), got) {
		return &Error{Code: CodeForbidden, Message: fmt.Sprintf("declaration %s was not routed to %s for a decision", decl.Facts["declarationNumber"], got),
			Problems: []schemas.Problem{{Pointer: "/customsAuthority", Detail: "is not among the authorities the declaration was routed to for a decision"}}}
	}
	if got, ok := f["declarant"].(string); ok && got != decl.Facts["declarant"] {
		return &Error{Code: CodeConflict, Message: fmt.Sprintf("declaration %s does not name this declarant", decl.Facts["declarationNumber"]),
			Problems: []schemas.Problem{{Pointer: "/declarant", Detail: "is not the declaration's declarant"}}}
	}
	return nil
}

// deciders are the parties that must answer a declaration: those its
// record names, or, for one archived before routing rules, its customs
// authority.
func deciders(decl Record) []string {
	if len(decl.Deciders) > 0 {
		return decl.Deciders
	}
	return []string{decl.Facts["customsAuthority"]}
}

// recipients keeps the named parties that exist at the gateway, without the sender.
func (s *Service) recipients(ctx context.Context, named []string, rec *Record) error {
	rec.Recipients = []string{}
	for _, id := range named {
		if id == "" || id == rec.Sender || slices.Contains(rec.Recipients, id) {
			continue
		}
		_, ok, err := s.party(ctx, id)
		if err != nil {
			return fmt.Errorf("look up recipient %s: %w", id, err)
		}
		if ok {
			rec.Recipients = append(rec.Recipients, id)
		}
	}
	sort.Strings(rec.Recipients)
	return nil
}

// A claim this submission made of a natural key, and when.
type claim struct {
	key string
	at  time.Time
}

// claimKey claims a natural key for id (Index.Claim), noting in claims a
// claim made anew (release gives up only those); it returns the holder.
func (s *Service) claimKey(ctx context.Context, key, id string, claims *[]claim) (string, error) {
	now := s.Now()
	holder, made, err := s.Index.Claim(ctx, key, id, now, now.Add(-ClaimTimeout))
	if err != nil {
		return "", fmt.Errorf("claim %s: %w", key, err)
	}
	if made {
		*claims = append(*claims, claim{key, now})
	}
	return holder, nil
}

// release gives up a refused submission's claims (Index.Release), even if
// its caller has left; a claim not given up only waits to go stale. A
// document archived under the same id keeps the keys it holds (its own
// claim may have been lost with Redis' last writes, then made again by
// this attempt); when the archive cannot tell, nothing is given up.
// found is that document's record when the submission read it already.
func (s *Service) release(ctx context.Context, id string, claims []claim, found *Record) {
	if len(claims) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	var held []string // the keys the document archived under id holds
	if found != nil {
		held = found.Keys
	} else if archived, err := s.Archive.Record(ctx, id); err == nil {
		held = archived.Keys
	} else if !errors.Is(err, ErrNotFound) {
		s.Logger.WarnContext(ctx, "release claims: the archive did not answer; they go stale instead", "id", id, "err", err)
		return
	}
	for _, c := range claims {
		if slices.Contains(held, c.key) {
			continue
		}
		if err := s.Index.Release(ctx, c.key, id, c.at); err != nil {
			s.Logger.WarnContext(ctx, "release claim", "key", c.key, "id", id, "err", err)
		}
	}
}

// releaseTimeout bounds what releasing claims adds to a refused submission
// (its backends may be what refused it).
const releaseTimeout = 5 * time.Second

// ClaimTimeout is how long a natural key stays reserved for a submission
// that was cut short before it was archived; after it another document may
// take the key.
const ClaimTimeout = 2 * time.Minute

// party answers from a short-lived cache: parties are created rarely,
// and each recipient would otherwise cost a storage read. ok is false for
// a party that does not exist.
func (s *Service) party(ctx context.Context, id string) (p Party, ok bool, err error) {
	if p, ok := s.parties.Get(id); ok {
		return p, true, nil
	}
	p, err = s.Parties.Party(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Party{}, false, nil
	} else if err != nil {
		return Party{}, false, err
	}
	s.parties.Add(id, p)
	return p, true, nil
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// DocumentID derives a document's id from its sender and either the
// Idempotency-Key or the bytes' SHA-256, so a repeated submission lands on
// the same id and the write-once archive detects it.
func DocumentID(sender, idempotencyKey string, sum []byte) string {
	h := sha256.New()
	h.Write([]byte(sender))
	if idempotencyKey != "" {
		h.Write([]byte("\x00key\x00" + idempotencyKey))
	} else {
		h.Write([]byte("\x00sha\x00"))
		h.Write(sum)
	}
	return strings.ToLower(idEncoding.EncodeToString(h.Sum(nil)[:16]))
}

// NamedDocumentID derives the id of a document named by a number
// (route.name) from the natural key it is: the same number lands on the
// same id, whatever the bytes or the Idempotency-Key, and the write-once
// archive keeps it unique.
func NamedDocumentID(key string) string {
	sum := sha256.Sum256([]byte("\x00named\x00" + key))
	return strings.ToLower(idEncoding.EncodeToString(sum[:16]))
}

var docIDRE = regexp.MustCompile(`^[a-z2-7]{26}$`)

// ValidDocumentID reports whether s has the shape of a document id.
func ValidDocumentID(s string) bool { return docIDRE.MatchString(s) }

// Document returns a document's record and exact bytes, if the caller sent
// or received it; otherwise not found. The bytes are checked against the
// SHA-256 taken when they arrived.
func (s *Service) Document(ctx context.Context, caller Party, id string) (Record, []byte, error) {
	rec, err := s.visibleRecord(ctx, caller, id)
	if err != nil {
		return Record{}, nil, err
	}
	body, err := s.Archive.Body(ctx, id)
	if err != nil {
		return Record{}, nil, fmt.Errorf("read document: %w", err)
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != rec.SHA256 {
		return Record{}, nil, fmt.Errorf("document %s: archived bytes do not match their SHA-256 %s", id, rec.SHA256)
	}
	return rec, body, nil
}

// visibleRecord returns a document's record if the caller sent or received
// it; otherwise not found, so its existence is not disclosed.
func (s *Service) visibleRecord(ctx context.Context, caller Party, id string) (Record, error) {
	if !ValidDocumentID(id) {
		return Record{}, Errorf(CodeNotFound, "no document %s", id)
	}
	rec, err := s.Archive.Record(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && !rec.Involves(caller.ID)) {
		return Record{}, Errorf(CodeNotFound, "no document %s", id)
	}
	if err != nil {
		return Record{}, fmt.Errorf("read record: %w", err)
	}
	return rec, nil
}

// Receipt returns a document's receipt, if the caller sent or received it.
func (s *Service) Receipt(ctx context.Context, caller Party, id string) (Receipt, error) {
	rec, err := s.visibleRecord(ctx, caller, id)
	return rec.Receipt, err
}

// InboxMessage is a message as a recipient pulls it, with its document.
type InboxMessage struct {
	ID         string          `json:"id"`
	DocumentID string          `json:"documentId"`
	Type       string          `json:"type"`
	Sender     string          `json:"sender"`
	SHA256     string          `json:"sha256"`
	ReceivedAt time.Time       `json:"receivedAt"`
	Document   json.RawMessage `json:"document"`
}

// Pull returns up to limit messages from the caller's inbox, waiting up to
// wait when it is empty. A message not acked comes back after the queue's
// visibility timeout.
func (s *Service) Pull(ctx context.Context, caller Party, limit int, wait time.Duration) ([]InboxMessage, error) {
	msgs, err := s.Queue.Pull(ctx, caller.ID, limit, wait)
	if err != nil {
		return nil, fmt.Errorf("pull inbox: %w", err)
	}
	// The bodies are read side by side: from S3 each is a request, and one
	// after another they would cap a pull near a thousand messages a second.
	out := make([]InboxMessage, len(msgs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(PullReaders)
	for i, m := range msgs {
		g.Go(func() (err error) {
			out[i], err = s.InboxMessageOf(gctx, m)
			if errors.Is(err, ErrNotFound) {
				// The archive lost this body (it was archived before it was
				// queued): the message stays pending, is offered again after
				// the visibility timeout, and holds up none of the others
				// (its place in out stays empty).
				s.Logger.ErrorContext(ctx, "inbox message without its document in the archive",
					"party", caller.ID, "id", m.DocumentID, "err", err)
				return nil
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out, func(m InboxMessage) bool { return m.ID == "" }), nil
}

// PullReaders is how many bodies one pull reads from the archive at once.
const PullReaders = 16

// Ack acknowledges messages of the caller's inbox; it returns how many were pending.
func (s *Service) Ack(ctx context.Context, caller Party, ids []string) (int, error) {
	for i, id := range ids {
		if !ValidDocumentID(id) {
			return 0, &Error{Code: CodeMalformed, Message: fmt.Sprintf("%q is not a message id", id),
				Problems: []schemas.Problem{{Pointer: fmt.Sprintf("/ids/%d", i), Detail: "not a message id"}}}
		}
	}
	n, err := s.Queue.Ack(ctx, caller.ID, ids)
	if err != nil {
		return 0, fmt.Errorf("ack: %w", err)
	}
	return n, nil
}

// Ready reports whether every backend that can tell is reachable.
func (s *Service) Ready(ctx context.Context) error {
	for _, b := range []any{s.Archive, s.Queue, s.Index, s.Parties} {
		if p, ok := b.(Pinger); ok {
			if err := p.Ping(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

func joinRoles(rs []Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, " or ")
}
