package exchange

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/landsea/corridor/schemas"
)

var partyIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

// Printable reports whether a name is text a list may print as it is:
// valid UTF-8 of letters, marks, digits, punctuation, symbols and spaces
// of any script; no control characters, bidi overrides, line separators
// or zero widths.
func Printable(name string) bool {
	return utf8.ValidString(name) && !strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) && !unicode.Is(unicode.Zs, r) })
}

// CreateParty checks and stores a new party; it returns ErrExists wrapped
// in a conflict when the id is taken.
func (s *Service) CreateParty(ctx context.Context, p Party) (Party, error) {
	var problems []schemas.Problem
	if !partyIDRE.MatchString(p.ID) || p.ID == GatewayParty {
		problems = append(problems, schemas.Problem{Pointer: "/id", Detail: "a party id is 2 to 63 characters: lowercase letters, digits and hyphens"})
	}
	if n := utf8.RuneCountInString(p.Name); n == 0 || n > 200 || strings.TrimSpace(p.Name) != p.Name {
		problems = append(problems, schemas.Problem{Pointer: "/name", Detail: "a name of 1 to 200 characters is required, without spaces around it"})
	} else if !Printable(p.Name) {
		// (a name is printed in lists: a line break, an escape sequence or
		// a bidi override could forge lines or hide what it says)
		problems = append(problems, schemas.Problem{Pointer: "/name", Detail: "a name is printable text: letters, marks, digits, punctuation, symbols and spaces"})
	}
	if len(p.Roles) == 0 {
		problems = append(problems, schemas.Problem{Pointer: "/roles", Detail: fmt.Sprintf("give at least one role of %v", Roles)})
	}
	for i, r := range p.Roles {
		if !slices.Contains(Roles, r) {
			problems = append(problems, schemas.Problem{Pointer: fmt.Sprintf("/roles/%d", i), Detail: fmt.Sprintf("%q is not a role; use one of %v", r, Roles)})
		} else if slices.Contains(p.Roles[:i], r) {
			problems = append(problems, schemas.Problem{Pointer: fmt.Sprintf("/roles/%d", i), Detail: fmt.Sprintf("%q is given twice", r)})
		}
	}
	if err := schemas.CheckCountry(p.Country); err != nil {
		problems = append(problems, schemas.Problem{Pointer: "/country", Detail: err.Error()})
	}
	for i, pl := range p.Places {
		if err := schemas.CheckUNLocode(pl); err != nil {
			problems = append(problems, schemas.Problem{Pointer: fmt.Sprintf("/places/%d", i), Detail: err.Error()})
		}
	}
	if len(problems) > 0 {
		return Party{}, &Error{Code: CodeInvalid, Message: "the party is not valid", Problems: problems}
	}
	p.CreatedAt = s.Now().UTC().Truncate(0)
	p.Disabled = false
	if err := s.Parties.CreateParty(ctx, p); errors.Is(err, ErrExists) {
		return Party{}, &Error{Code: CodeConflict, Message: fmt.Sprintf("party %s exists already", p.ID), Err: err}
	} else if err != nil {
		return Party{}, fmt.Errorf("create party: %w", err)
	}
	s.partyList.Purge() // routing by role sees it at once (other gateways within CacheTTL)
	return p, nil
}

// IssueKey makes a new API key for a party and returns it; only its hash is stored.
func (s *Service) IssueKey(ctx context.Context, party string) (string, APIKey, error) {
	if p, err := s.Parties.Party(ctx, party); errors.Is(err, ErrNotFound) {
		return "", APIKey{}, Errorf(CodeNotFound, "no party %s", party)
	} else if err != nil {
		return "", APIKey{}, fmt.Errorf("look up party: %w", err)
	} else if p.Disabled {
		return "", APIKey{}, Errorf(CodeConflict, "party %s is disabled: its keys do not work", party)
	}
	plain, k, err := NewAPIKey(party, s.Now())
	if err != nil {
		return "", APIKey{}, fmt.Errorf("make key: %w", err)
	}
	if err := s.Parties.PutKey(ctx, k); err != nil {
		return "", APIKey{}, fmt.Errorf("store key: %w", err)
	}
	return plain, k, nil
}

// RevokeKey revokes one API key by its id (the part after "cor.").
func (s *Service) RevokeKey(ctx context.Context, keyID string) error {
	k, err := s.Parties.Key(ctx, keyID)
	if errors.Is(err, ErrNotFound) {
		return Errorf(CodeNotFound, "no key %s", keyID)
	} else if err != nil {
		return err
	}
	k.Revoked = true
	if err := s.Parties.PutKey(ctx, k); err != nil {
		return err
	}
	return s.revoked(ctx, "key:"+keyID)
}

// DisableParty stops all of a party's keys from working.
func (s *Service) DisableParty(ctx context.Context, id string) error {
	p, err := s.Parties.Party(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Errorf(CodeNotFound, "no party %s", id)
	} else if err != nil {
		return err
	}
	p.Disabled = true
	if err := s.Parties.UpdateParty(ctx, p); err != nil {
		return err
	}
	return s.revoked(ctx, "party:"+id)
}

// The admin API's pages of parties.
const (
	DefaultPartyLimit = 100
	MaxPartyLimit     = 1000
)

// PartyPage returns up to limit parties (0: DefaultPartyLimit) by id,
// after the party a cursor names, and the cursor of the next page ("" on
// the last). A cursor is a position, as the lists' (encodeCursor), of the
// last party id of the page before.
func (s *Service) PartyPage(ctx context.Context, cursor string, limit int) ([]Party, string, error) {
	if limit == 0 {
		limit = DefaultPartyLimit
	}
	if limit < 1 || limit > MaxPartyLimit {
		return nil, "", Errorf(CodeMalformed, "limit is 1 to %d", MaxPartyLimit)
	}
	pos, err := decodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	after := PositionID(pos)
	all, err := s.Parties.ListParties(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("list parties: %w", err)
	}
	i, _ := slices.BinarySearchFunc(all, after, func(p Party, id string) int { return strings.Compare(p.ID, id) })
	if i < len(all) && after != "" && all[i].ID == after {
		i++
	}
	page := all[i:min(i+limit, len(all))]
	next := ""
	if i+len(page) < len(all) {
		next = encodeCursor(Position(time.Time{}, page[len(page)-1].ID))
	}
	return append([]Party{}, page...), next, nil
}
