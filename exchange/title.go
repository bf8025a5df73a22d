package exchange

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/landsea/corridor/schemas"
)

// The one bill is a document of title: at every moment exactly one party
// holds it, and the gateway keeps the chain of what happened to it. Each
// entry is signed by the gateway (the receipt key) and carries the hash
// of the entry before it, so anyone holding the published key can check
// a saved chain offline. Names follow DCSA eBL and PINT where they have
// them (TRANSFER, SURRENDER_FOR_DELIVERY, SURRENDER_FOR_AMENDMENT).
//
// The rules:
//   - Only the holder starts an action, and only one at a time: TRANSFER,
//     PLEDGE (to a bank), RELEASE (a bank gives a pledged bill back to
//     the party that pledged it), SURRENDER_FOR_DELIVERY and
//     SURRENDER_FOR_AMENDMENT (both to the issuer).
//   - Every action waits for its recipient to ACCEPT or REJECT it; until
//     then the title stays with the sender, and a reject leaves it there.
//     The sender may WITHDRAW it while it waits (a recipient that never
//     answers cannot freeze the title).
//   - A straight bill (isToOrder false) is transferred only to its named
//     consignee, and surrendered for delivery only by its consignee
//     (DCSA's rule for straight bills: the consignee is the one party
//     that takes delivery). It may be pledged to a bank, which gives it
//     back (RELEASE) or, paid, transfers it to the consignee.
//   - An accepted SURRENDER_FOR_DELIVERY ends the title: SURRENDERED, and
//     nothing follows. An accepted SURRENDER_FOR_AMENDMENT puts it with
//     the issuer until the issuer amends the bill (AMEND), which returns
//     it to the party that surrendered it.

// The title actions and answers.
const (
	ActionIssue                 = "ISSUE"
	ActionTransfer              = "TRANSFER"
	ActionPledge                = "PLEDGE"
	ActionRelease               = "RELEASE"
	ActionSurrenderForDelivery  = "SURRENDER_FOR_DELIVERY"
	ActionSurrenderForAmendment = "SURRENDER_FOR_AMENDMENT"
	ActionAccept                = "ACCEPT"
	ActionReject                = "REJECT"
	ActionWithdraw              = "WITHDRAW" // the sender takes back its pending action
	ActionAmend                 = "AMEND"
)

// The title statuses.
const (
	TitleIssued                  = "ISSUED"
	TitlePledged                 = "PLEDGED"
	TitleSurrenderedForAmendment = "SURRENDERED_FOR_AMENDMENT"
	TitleSurrendered             = "SURRENDERED"
)

// TitleFormat is the version of the chain entry layout; it is signed
// with the entry, so a verifier knows which layout it reads.
const TitleFormat = 1

// maxChain bounds the entries of one bill's chain: one more is refused.
const maxChain = 1000

// TitleEntry is one step of a one bill's title. Hash is the SHA-256 of
// the entry's signing bytes, and Signature the gateway's Ed25519
// signature of them (see TitleSigningBytes).
type TitleEntry struct {
	Format         int    `json:"format"`
	Ref            string `json:"ref"`
	Seq            int    `json:"seq"`
	Action         string `json:"action"`
	Actor          string `json:"actor"`
	Recipient      string `json:"recipient"`
	Reason         string `json:"reason,omitempty"`
	DocumentID     string `json:"documentId"`     // the one bill revision in force
	DocumentSHA256 string `json:"documentSha256"` // of its exact bytes
	Time           string `json:"time"`           // RFC 3339, UTC
	PreviousHash   string `json:"previousHash"`   // "" for the first entry
	Hash           string `json:"hash"`
	Signature      string `json:"signature"`
}

// Title is a one bill's title as GET /v1/bills/{ref}/title gives it.
type Title struct {
	Ref     string       `json:"ref"`
	Status  string       `json:"status"`
	Holder  string       `json:"holder"`
	Pending *TitleEntry  `json:"pending"`
	Chain   []TitleEntry `json:"chain"`
	Head    TitleHead    `json:"head"`
}

// TitleHead is where the chain stood when the gateway answered, signed:
// a saved title whose newest entries were dropped no longer matches its
// head. It says nothing of what happened after Time: a verifier offline
// knows the title as of then.
type TitleHead struct {
	Ref         string `json:"ref"`
	Length      int    `json:"length"`
	LastHash    string `json:"lastHash"`
	Status      string `json:"status"`
	Holder      string `json:"holder"`
	PendingHash string `json:"pendingHash"` // the pending entry's hash, "" when none
	Time        string `json:"time"`
	Signature   string `json:"signature"`
}

// TitleHeadSigningBytes are what a head's signature covers: the head
// without its signature as RFC 8785 canonical JSON, with "kind" set to
// "title-head" so that no other signed object reads as one.
func TitleHeadSigningBytes(h TitleHead) []byte {
	return canonical(map[string]any{"kind": "title-head", "ref": h.Ref, "length": h.Length, "lastHash": h.LastHash,
		"status": h.Status, "holder": h.Holder, "pendingHash": h.PendingHash, "time": h.Time})
}

// canonical is RFC 8785 canonical JSON of a map of strings, integers and
// string slices (encoding/json sorts map keys; HTML is not escaped).
func canonical(m map[string]any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(m) // strings, ints and string slices only: cannot fail
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// TitleSigningBytes are what an entry's hash and signature cover: the
// entry without hash and signature as RFC 8785 canonical JSON (members
// sorted by name, no spaces; only strings and integers occur).
func TitleSigningBytes(e TitleEntry) []byte {
	m := map[string]any{"format": e.Format, "ref": e.Ref, "seq": e.Seq, "action": e.Action, "actor": e.Actor,
		"recipient": e.Recipient, "documentId": e.DocumentID, "documentSha256": e.DocumentSHA256, "time": e.Time,
		"previousHash": e.PreviousHash}
	if e.Reason != "" {
		m["reason"] = e.Reason
	}
	return canonical(m)
}

// sealTitle sets an entry's hash and signature.
func (s *Signer) sealTitle(e *TitleEntry) {
	b := TitleSigningBytes(*e)
	sum := sha256.Sum256(b)
	e.Hash = hex.EncodeToString(sum[:])
	e.Signature = base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.key, b))
}

// TitleError says which entry of a chain does not hold, and why.
type TitleError struct {
	Seq    int // index of the entry in the chain; -1 for the chain as a whole
	Reason string
}

func (e *TitleError) Error() string {
	if e.Seq < 0 {
		return "title chain: " + e.Reason
	}
	return fmt.Sprintf("title chain entry %d: %s", e.Seq, e.Reason)
}

// VerifyTitle checks a saved title against the gateway's public key:
// every entry's hash and signature, the link of each to the one before,
// their order, that each step was allowed when it was taken (the actor
// held the title, an answer came from the party asked), and that status,
// holder and pending are what the chain leads to. A changed, dropped,
// reordered or re-signed entry fails with a *TitleError naming it.
func VerifyTitle(pub ed25519.PublicKey, t Title) error {
	if len(t.Chain) == 0 {
		return &TitleError{Seq: -1, Reason: "the chain is empty"}
	}
	for i, e := range t.Chain {
		fail := func(format string, args ...any) error {
			return &TitleError{Seq: i, Reason: fmt.Sprintf(format, args...)}
		}
		b := TitleSigningBytes(e)
		sum := sha256.Sum256(b)
		sig, err := base64.RawURLEncoding.DecodeString(e.Signature)
		switch {
		case e.Format != TitleFormat:
			return fail("format %d, this verifier reads %d", e.Format, TitleFormat)
		case e.Seq != i:
			return fail("has seq %d at position %d: entries were dropped or reordered", e.Seq, i)
		case e.Ref != t.Ref:
			return fail("belongs to bill %s, not %s", e.Ref, t.Ref)
		case hex.EncodeToString(sum[:]) != e.Hash:
			return fail("its hash does not match its contents: the entry was changed")
		case err != nil || !ed25519.Verify(pub, b, sig):
			return fail("its signature does not verify with this key: the entry was changed or signed by another key")
		case i == 0 && e.PreviousHash != "":
			return fail("the first entry links to a previous one")
		case i > 0 && e.PreviousHash != t.Chain[i-1].Hash:
			return fail("does not link to entry %d (previousHash differs): entries were dropped, reordered or replaced", i-1)
		}
	}
	st, err := replayTitle(t.Chain)
	if err != nil {
		return err
	}
	h := t.Head
	last := t.Chain[len(t.Chain)-1]
	pending := ""
	if st.pending != nil {
		pending = st.pending.Hash
	}
	sig, err := base64.RawURLEncoding.DecodeString(h.Signature)
	switch {
	case err != nil || !ed25519.Verify(pub, TitleHeadSigningBytes(h), sig):
		return &TitleError{Seq: -1, Reason: "the head's signature does not verify with this key"}
	case h.Ref != t.Ref:
		return &TitleError{Seq: -1, Reason: fmt.Sprintf("the head is of bill %s", h.Ref)}
	case h.Length != len(t.Chain) || h.LastHash != last.Hash:
		return &TitleError{Seq: -1, Reason: fmt.Sprintf("the signed head says %d entries ending in %.12s, the chain has %d ending in %.12s: entries were dropped or added at the end",
			h.Length, h.LastHash, len(t.Chain), last.Hash)}
	case h.Status != st.status || h.Holder != st.holder || h.PendingHash != pending:
		return &TitleError{Seq: -1, Reason: "the signed head does not match where the chain leads"}
	}
	if st.status != t.Status || st.holder != t.Holder || (st.pending == nil) != (t.Pending == nil) ||
		(st.pending != nil && *st.pending != *t.Pending) {
		return &TitleError{Seq: -1, Reason: fmt.Sprintf("the chain leads to %s held by %s, but the title says %s held by %s",
			st.status, st.holder, t.Status, t.Holder)}
	}
	return nil
}

// titleState is where a chain leads.
type titleState struct {
	status      string
	holder      string
	issuer      string
	pending     *TitleEntry
	pledgor     string // who pledged the bill to the bank that holds it
	surrenderer string // who surrendered it for amendment
	doc, sha    string // the revision in force
}

// replayTitle walks a chain from its issue, refusing a step the rules do
// not allow when it was taken.
func replayTitle(chain []TitleEntry) (titleState, error) {
	var st titleState
	for i, e := range chain {
		fail := func(format string, args ...any) error {
			return &TitleError{Seq: i, Reason: fmt.Sprintf(format, args...)}
		}
		switch {
		case i == 0 && e.Action != ActionIssue:
			return st, fail("the first entry is %s, not ISSUE", e.Action)
		case i > 0 && e.Action == ActionIssue:
			return st, fail("ISSUE after the first entry")
		case i > 0 && st.status == TitleSurrendered:
			return st, fail("%s after the bill was surrendered for delivery", e.Action)
		}
		switch e.Action {
		case ActionIssue:
			st = titleState{status: TitleIssued, holder: e.Recipient, issuer: e.Actor, doc: e.DocumentID, sha: e.DocumentSHA256}
		case ActionTransfer, ActionPledge, ActionRelease, ActionSurrenderForDelivery, ActionSurrenderForAmendment:
			switch {
			case e.Actor != st.holder:
				return st, fail("%s by %s, who does not hold the title (%s does)", e.Action, e.Actor, st.holder)
			case st.pending != nil:
				return st, fail("%s while %s is pending", e.Action, st.pending.Action)
			case st.status == TitleSurrenderedForAmendment:
				return st, fail("%s while the bill is surrendered for amendment", e.Action)
			case (e.Action == ActionSurrenderForDelivery || e.Action == ActionSurrenderForAmendment) && e.Recipient != st.issuer:
				return st, fail("a surrender goes to the issuer %s, not %s", st.issuer, e.Recipient)
			case e.Action == ActionRelease && (st.status != TitlePledged || e.Recipient != st.pledgor):
				return st, fail("RELEASE returns a pledged bill to the party that pledged it")
			case e.Action == ActionPledge && st.status == TitlePledged:
				return st, fail("PLEDGE of a bill already pledged")
			}
			p := e
			st.pending = &p
		case ActionAccept, ActionReject:
			switch {
			case st.pending == nil:
				return st, fail("%s with nothing pending", e.Action)
			case e.Actor != st.pending.Recipient:
				return st, fail("%s by %s; only %s was asked", e.Action, e.Actor, st.pending.Recipient)
			case e.Recipient != st.pending.Actor:
				return st, fail("%s answers %s, not %s", e.Action, st.pending.Actor, e.Recipient)
			}
			if e.Action == ActionAccept {
				st.apply(*st.pending)
			}
			st.pending = nil
		case ActionWithdraw:
			switch {
			case st.pending == nil:
				return st, fail("WITHDRAW with nothing pending")
			case e.Actor != st.pending.Actor || e.Recipient != st.pending.Recipient:
				return st, fail("WITHDRAW by %s of %s's %s", e.Actor, st.pending.Actor, st.pending.Action)
			}
			st.pending = nil
		case ActionAmend:
			want := st.surrenderer
			if st.status == TitleIssued {
				want = st.issuer
			}
			if e.Actor != st.issuer || !st.amendable() || e.Recipient != want {
				return st, fail("AMEND by %s to %s while the title is %s with %s", e.Actor, e.Recipient, st.status, st.holder)
			}
			st.holder, st.doc, st.sha = e.Recipient, e.DocumentID, e.DocumentSHA256
			st.status = TitleIssued
			if st.pledgor != "" {
				st.status = TitlePledged
			}
		default:
			return st, fail("unknown action %q", e.Action)
		}
	}
	return st, nil
}

// apply moves the title as an accepted action says.
func (st *titleState) apply(e TitleEntry) {
	from := st.holder
	st.holder = e.Recipient
	switch e.Action {
	case ActionTransfer:
		st.status, st.pledgor = TitleIssued, "" // a bank selling on ends the pledge
	case ActionPledge:
		st.status, st.pledgor = TitlePledged, from
	case ActionRelease:
		st.status, st.pledgor = TitleIssued, ""
	case ActionSurrenderForDelivery:
		st.status = TitleSurrendered
	case ActionSurrenderForAmendment:
		st.status, st.surrenderer = TitleSurrenderedForAmendment, from
	}
}

// titleEntryID is the document id of entry seq of a bill's chain: the
// same for every gateway, so the write-once archive lets exactly one
// entry take each place in the chain.
func titleEntryID(ref string, seq int) string {
	return DocumentID("title:"+ref, strconv.Itoa(seq), nil)
}

// entryOf reads a chain entry back from its record's facts.
func entryOf(rec Record) TitleEntry {
	f := rec.Facts
	seq, _ := strconv.Atoi(f["seq"])
	format, _ := strconv.Atoi(f["format"])
	return TitleEntry{Format: format, Ref: f["ref"], Seq: seq, Action: f["action"], Actor: rec.Sender, Recipient: f["recipient"],
		Reason: f["reason"], DocumentID: f["documentId"], DocumentSHA256: f["documentSha256"], Time: f["time"],
		PreviousHash: f["previousHash"], Hash: f["hash"], Signature: f["signature"]}
}

// factsOf is entryOf's inverse.
func factsOf(e TitleEntry) map[string]string {
	f := map[string]string{"format": strconv.Itoa(e.Format), "ref": e.Ref, "seq": strconv.Itoa(e.Seq), "action": e.Action,
		"recipient": e.Recipient, "documentId": e.DocumentID, "documentSha256": e.DocumentSHA256, "time": e.Time,
		"previousHash": e.PreviousHash, "hash": e.Hash, "signature": e.Signature}
	if e.Reason != "" {
		f["reason"] = e.Reason
	}
	return f
}

var errTitleRace = errors.New("the title changed while this action was taken")

// TitleRequest is an action the holder asks for.
type TitleRequest struct {
	Action string
	To     string
	Reason string
}

// chainOf is a shipment's chain: the issue entry, worked out (and signed:
// Ed25519 signs deterministically) from the one bill as first submitted,
// then the archived entries.
func (s *Service) chainOf(st *shipState) []TitleEntry {
	chain := st.chain()
	if s.Signer != nil {
		s.Signer.sealTitle(&chain[0])
	}
	return chain
}

// chain is a shipment's chain as the index holds it, its issue entry not
// yet signed (replaying it needs no signature).
func (st *shipState) chain() []TitleEntry {
	b := st.original
	chain := make([]TitleEntry, 1, 1+len(st.titleRecs))
	chain[0] = TitleEntry{Format: TitleFormat, Ref: st.ref, Seq: 0, Action: ActionIssue, Actor: b.Sender, Recipient: b.Facts["holder"],
		DocumentID: b.ID, DocumentSHA256: b.SHA256, Time: b.ReceivedAt.UTC().Format(time.RFC3339Nano)}
	for _, r := range st.titleRecs {
		chain = append(chain, entryOf(r))
	}
	return chain
}

// titleOf is a title as the gateway answers it now, with its signed head.
func (s *Service) titleOf(ref string, chain []TitleEntry, st titleState) Title {
	t := Title{Ref: ref, Status: st.status, Holder: st.holder, Pending: st.pending, Chain: chain}
	t.Head = TitleHead{Ref: ref, Length: len(chain), LastHash: chain[len(chain)-1].Hash, Status: st.status, Holder: st.holder,
		Time: s.Now().UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano)}
	if st.pending != nil {
		t.Head.PendingHash = st.pending.Hash
	}
	if s.Signer != nil {
		t.Head.Signature = base64.RawURLEncoding.EncodeToString(ed25519.Sign(s.Signer.key, TitleHeadSigningBytes(t.Head)))
	}
	return t
}

// Title returns a one bill's title and chain to those who may see its shipment.
func (s *Service) Title(ctx context.Context, caller Party, ref string) (Title, error) {
	st, _, err := s.oneShipment(ctx, caller, ref)
	if err != nil {
		return Title{}, err
	}
	return s.titleOf(st.ref, s.chainOf(st), st.title), nil
}

var reasonRE = regexp.MustCompile(`^[^\x00-\x1f\x7f\x{2028}\x{2029}]{0,500}$`)

// RequestTitle starts a title action: by the holder only, one at a time.
func (s *Service) RequestTitle(ctx context.Context, caller Party, ref string, req TitleRequest) (Title, error) {
	st, _, err := s.oneShipment(ctx, caller, ref)
	if err != nil {
		return Title{}, err
	}
	if st, err = s.repairedTitle(ctx, st); err != nil {
		return Title{}, err
	}
	ts := st.title
	invalid := func(pointer, format string, args ...any) error {
		return &Error{Code: CodeInvalid, Message: fmt.Sprintf(format, args...),
			Problems: []schemas.Problem{{Pointer: pointer, Detail: fmt.Sprintf(format, args...)}}}
	}
	switch {
	case ts.status == TitleSurrendered:
		return Title{}, Errorf(CodeConflict, "bill %s was surrendered for delivery: its title has ended", st.ref)
	case caller.ID != ts.holder:
		return Title{}, Errorf(CodeForbidden, "only the holder of bill %s acts on its title", st.ref)
	case ts.pending != nil:
		return Title{}, Errorf(CodeConflict, "%s to %s is pending: it must be accepted or rejected first", ts.pending.Action, ts.pending.Recipient)
	case ts.status == TitleSurrenderedForAmendment:
		return Title{}, Errorf(CodeConflict, "bill %s is with its issuer for amendment", st.ref)
	case !reasonRE.MatchString(req.Reason):
		return Title{}, invalid("/reason", "a reason is at most 500 characters, without control characters")
	}
	plan := st.bill.Plan
	if plan == nil {
		plan = &Plan{}
	}
	to := req.To
	switch req.Action {
	case ActionTransfer, ActionPledge:
		p, ok, err := s.party(ctx, to)
		switch {
		case err != nil:
			return Title{}, err
		case !ok:
			return Title{}, invalid("/to", "no party %q", to)
		case to == caller.ID:
			return Title{}, invalid("/to", "the title is yours already")
		case req.Action == ActionPledge && !p.Has(RoleBank):
			return Title{}, invalid("/to", "a bill is pledged to a bank; %s is not one", to)
		case req.Action == ActionPledge && ts.status == TitlePledged:
			return Title{}, Errorf(CodeConflict, "bill %s is pledged already", st.ref)
		case req.Action == ActionTransfer && !plan.ToOrder && to != plan.Consignee:
			return Title{}, invalid("/to", "bill %s is a straight bill: it is transferred only to its consignee %s (pledge it to a bank with PLEDGE)", st.ref, plan.Consignee)
		}
	case ActionWithdraw:
		return Title{}, invalid("/action", "a pending action is withdrawn with POST /v1/bills/{ref}/title/withdraw")
	case ActionRelease:
		if ts.status != TitlePledged {
			return Title{}, Errorf(CodeConflict, "bill %s is not pledged", st.ref)
		}
		if to != "" && to != ts.pledgor {
			return Title{}, invalid("/to", "a release returns the bill to %s, who pledged it", ts.pledgor)
		}
		to = ts.pledgor
	case ActionSurrenderForDelivery, ActionSurrenderForAmendment:
		if to != "" && to != ts.issuer {
			return Title{}, invalid("/to", "a surrender goes to the issuer, %s", ts.issuer)
		}
		to = ts.issuer
		if req.Action == ActionSurrenderForDelivery && !plan.ToOrder && caller.ID != plan.Consignee {
			return Title{}, Errorf(CodeConflict, "bill %s is a straight bill: only its consignee %s surrenders it for delivery", st.ref, plan.Consignee)
		}
	default:
		return Title{}, invalid("/action", "action is one of TRANSFER, PLEDGE, RELEASE, SURRENDER_FOR_DELIVERY, SURRENDER_FOR_AMENDMENT")
	}
	return s.appendTitle(ctx, st, TitleEntry{Action: req.Action, Actor: caller.ID, Recipient: to, Reason: req.Reason})
}

// WithdrawTitle takes back the caller's pending action; the title stays
// where it is.
func (s *Service) WithdrawTitle(ctx context.Context, caller Party, ref, reason string) (Title, error) {
	st, p, err := s.pendingTitle(ctx, caller, ref, reason, func(p *TitleEntry) error {
		if caller.ID != p.Actor {
			return Errorf(CodeForbidden, "only %s, who asked for the pending %s, withdraws it", p.Actor, p.Action)
		}
		return nil
	})
	if err != nil {
		return Title{}, err
	}
	return s.appendTitle(ctx, st, TitleEntry{Action: ActionWithdraw, Actor: caller.ID, Recipient: p.Recipient, Reason: reason})
}

// pendingTitle reads a bill's title for an answer to its pending action:
// there must be one, allowed says whether the caller may give this
// answer, and the reason must be one the chain takes.
func (s *Service) pendingTitle(ctx context.Context, caller Party, ref, reason string, allowed func(*TitleEntry) error) (*shipState, *TitleEntry, error) {
	st, _, err := s.oneShipment(ctx, caller, ref)
	if err != nil {
		return nil, nil, err
	}
	if st, err = s.repairedTitle(ctx, st); err != nil {
		return nil, nil, err
	}
	p := st.title.pending
	if p == nil {
		return nil, nil, Errorf(CodeConflict, "nothing is pending on bill %s", st.ref)
	}
	if err := allowed(p); err != nil {
		return nil, nil, err
	}
	if !reasonRE.MatchString(reason) {
		return nil, nil, &Error{Code: CodeInvalid, Message: "a reason is at most 500 characters, without control characters",
			Problems: []schemas.Problem{{Pointer: "/reason", Detail: "at most 500 characters, without control characters"}}}
	}
	return st, p, nil
}

// repairedTitle first indexes an entry the archive holds beyond the
// indexed chain (an append whose gateway died before the index), so that
// an action is decided on the whole chain; it reads the archive once.
func (s *Service) repairedTitle(ctx context.Context, st *shipState) (*shipState, error) {
	next := len(st.titleRecs) + 1
	if _, err := s.Archive.Record(ctx, titleEntryID(st.ref, next)); errors.Is(err, ErrNotFound) {
		if _, err := s.Archive.Body(ctx, titleEntryID(st.ref, next)); errors.Is(err, ErrNotFound) {
			return st, nil
		}
	} else if err != nil {
		return nil, err
	}
	if err := s.repairTitle(ctx, st, next); err != nil {
		return nil, err
	}
	return s.loadShipment(ctx, st.ref)
}

// AnswerTitle accepts or rejects the pending action, by the party it names.
func (s *Service) AnswerTitle(ctx context.Context, caller Party, ref string, accept bool, reason string) (Title, error) {
	st, p, err := s.pendingTitle(ctx, caller, ref, reason, func(p *TitleEntry) error {
		if caller.ID != p.Recipient {
			return Errorf(CodeForbidden, "the pending %s was sent to %s; only it answers", p.Action, p.Recipient)
		}
		return nil
	})
	if err != nil {
		return Title{}, err
	}
	action := ActionReject
	if accept {
		action = ActionAccept
	}
	return s.appendTitle(ctx, st, TitleEntry{Action: action, Actor: caller.ID, Recipient: p.Actor, Reason: reason})
}

// appendTitle adds an entry at the end of the chain. Its document id is
// fixed by bill and place (titleEntryID), and the archive is write-once,
// so of several gateways appending at once exactly one wins; the others
// get 409, and the chain never forks.
func (s *Service) appendTitle(ctx context.Context, st *shipState, e TitleEntry) (Title, error) {
	chain := s.chainOf(st)
	if len(chain) >= maxChain {
		return Title{}, Errorf(CodeConflict, "the title of bill %s has %d entries, the most a chain takes", st.ref, maxChain)
	}
	e.Format, e.Ref, e.Seq, e.PreviousHash = TitleFormat, st.ref, len(chain), chain[len(chain)-1].Hash
	if e.DocumentID == "" { // an AMEND names the new revision; the rest the one in force
		e.DocumentID, e.DocumentSHA256 = st.title.doc, st.title.sha
	}
	now := s.Now().UTC().Truncate(time.Microsecond)
	e.Time = now.Format(time.RFC3339Nano)
	s.Signer.sealTitle(&e)
	next, err := replayTitle(append(chain, e))
	if err != nil { // the checks above should have caught it: refuse rather than archive
		return Title{}, &Error{Code: CodeConflict, Message: err.Error(), Err: err}
	}
	body, err := json.Marshal(e)
	if err != nil {
		return Title{}, err
	}
	rec := s.titleRecord(st, e, body)
	if err := s.Archive.Put(ctx, rec, body); errors.Is(err, ErrExists) {
		// Ours, if another request's repair finished writing our entry;
		// else another entry took this place first.
		if won, err := s.Archive.Body(ctx, rec.ID); err != nil || !bytes.Equal(won, body) {
			if err := s.repairTitle(ctx, st, e.Seq); err != nil {
				return Title{}, err
			}
			return Title{}, &Error{Code: CodeConflict, Message: "the title of bill " + st.ref + " changed while you asked; read it again", Err: errTitleRace}
		}
	} else if err != nil {
		return Title{}, fmt.Errorf("archive title entry: %w", err)
	}
	if err := s.deliver(ctx, rec); err != nil {
		return Title{}, err
	}
	s.Logger.InfoContext(ctx, "title", "bill", st.ref, "seq", e.Seq, "action", e.Action, "actor", e.Actor, "recipient", e.Recipient)
	return s.titleOf(st.ref, append(chain, e), next), nil
}

// titleRecord is the archived record of a chain entry: it goes to every
// member of the shipment, and its facts hold the whole entry, so the
// chain is read from the index without reading the bodies.
func (s *Service) titleRecord(st *shipState, e TitleEntry, body []byte) Record {
	at, _ := time.Parse(time.RFC3339Nano, e.Time)
	var to []string
	for m := range st.members {
		if m != e.Actor && m != e.Recipient {
			to = append(to, m)
		}
	}
	if e.Recipient != e.Actor {
		to = append(to, e.Recipient) // a new holder may be new to the shipment
	}
	slices.Sort(to)
	rec := s.sealed(titleEntryID(st.ref, e.Seq), TypeTitle, e.Actor, at, to, body)
	rec.Facts = factsOf(e)
	rec.Shipments = []Link{{Ref: st.ref, Doc: st.original.ID, Opened: st.original.ReceivedAt}}
	rec.Members = titleMembers(e)
	return rec
}

// titleMembers: a party joins the shipment when it takes the title (it
// accepts, or an amendment returns the title to it), not when it is asked:
// a holder cannot make a party a member by naming it, and a party that
// rejects stays out. While asked, the recipient may read the shipment
// (see accessOf).
func titleMembers(e TitleEntry) []string {
	switch e.Action {
	case ActionAccept:
		return []string{e.Actor}
	case ActionAmend:
		return []string{e.Recipient}
	}
	return nil
}

// repairTitle indexes the archived entries from seq on that the index
// does not know yet: an append that reached the archive, and then the
// gateway died before the index (or died between body and record, in
// which case the record is written now from the body).
func (s *Service) repairTitle(ctx context.Context, st *shipState, seq int) error {
	for ; seq < maxChain; seq++ {
		id := titleEntryID(st.ref, seq)
		rec, err := s.Archive.Record(ctx, id)
		if errors.Is(err, ErrNotFound) {
			body, berr := s.Archive.Body(ctx, id)
			if errors.Is(berr, ErrNotFound) {
				return nil
			} else if berr != nil {
				return berr
			}
			var e TitleEntry
			if err := json.Unmarshal(body, &e); err != nil {
				return fmt.Errorf("title entry %s: %w", id, err)
			}
			rec = s.titleRecord(st, e, body)
			if err := s.Archive.Put(ctx, rec, body); errors.Is(err, ErrExists) {
				// Another writer completed the place meanwhile (on the embedded
				// archive, a retry may have taken it over in full): its entry is
				// the one archived.
				if rec, err = s.Archive.Record(ctx, id); err != nil {
					return err
				}
			} else if err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		if err := s.deliver(ctx, rec); err != nil {
			return err
		}
	}
	return nil
}
