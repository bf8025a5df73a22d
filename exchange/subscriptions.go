package exchange

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/landsea/corridor/schemas"
)

// Push is a second way to drain a party's inbox: a subscription names a
// URL, and the gateway POSTs each waiting message there (Standard
// Webhooks: signed with the subscription's secret and with the receipt
// key), acking it on a 2xx. A message never pushed successfully stays in
// the inbox for pull, so push and pull cannot disagree and nothing is lost
// while a receiver is down. adapters/webhook does the pushing.

// Subscription is a party's webhook.
type Subscription struct {
	ID          string    `json:"id"`
	Party       string    `json:"party"`
	URL         string    `json:"url"`
	Types       []string  `json:"types,omitempty"` // only these document types (empty: all)
	Refs        []string  `json:"refs,omitempty"`  // only these shipments (one bill numbers; empty: all)
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
	// Disabled: deleted, or the receiver answered 410 Gone.
	Disabled       bool   `json:"disabled,omitempty"`
	DisabledReason string `json:"disabledReason,omitempty"`
	// Secrets sign deliveries; the first is the newest. A rotated-out
	// secret keeps signing beside the new one until its Until.
	Secrets []Secret `json:"secrets,omitempty"`
}

// Secret is a webhook signing secret ("whsec_" + base64 of 32 bytes, as
// Standard Webhooks has it). The gateway must sign with it, so it is
// stored as it is (in the parties' store, beside the key hashes), and
// shown to the party once.
type Secret struct {
	Value string     `json:"value"`
	Until *time.Time `json:"until,omitempty"`
}

// View is the subscription as its party reads it: no secrets.
func (s Subscription) View() Subscription {
	s.Secrets = nil
	return s
}

// Matches reports whether a message is for this subscription.
func (s Subscription) Matches(m Message) bool {
	return !s.Disabled && (len(s.Types) == 0 || slices.Contains(s.Types, m.Type)) &&
		(len(s.Refs) == 0 || slices.Contains(s.Refs, m.Ref))
}

// SigningSecrets are the secrets that sign now.
func (s Subscription) SigningSecrets(now time.Time) []string {
	var out []string
	for _, sec := range s.Secrets {
		if sec.Until == nil || now.Before(*sec.Until) {
			out = append(out, sec.Value)
		}
	}
	return out
}

// Subscriptions stores the webhooks (with the parties: they hold secrets).
type Subscriptions interface {
	// PutSubscription stores a subscription, new or changed.
	PutSubscription(ctx context.Context, s Subscription) error
	// Subscription returns one, or ErrNotFound.
	Subscription(ctx context.Context, id string) (Subscription, error)
	// ListSubscriptions returns every subscription, disabled ones too.
	ListSubscriptions(ctx context.Context) ([]Subscription, error)
	// DeleteSubscription removes one; an unknown id is no error.
	DeleteSubscription(ctx context.Context, id string) error
}

// PushState is where the pushing of one message to one subscription stands.
type PushState struct {
	Attempts int       `json:"attempts"`
	First    time.Time `json:"first"`
	Next     time.Time `json:"next"`           // not before
	Done     bool      `json:"done,omitempty"` // the receiver took it
	GaveUp   bool      `json:"gaveUp,omitempty"`
}

// Attempt is one delivery attempt, as GET /v1/subscriptions/{id}/deliveries lists it.
type Attempt struct {
	MessageID  string     `json:"messageId"`
	At         time.Time  `json:"at"`
	Status     int        `json:"status,omitempty"` // HTTP status, 0 when there was no answer
	Error      string     `json:"error,omitempty"`
	DurationMS int64      `json:"durationMs"`
	Next       *time.Time `json:"nextAttempt,omitempty"`
	Replay     bool       `json:"replay,omitempty"`
}

// PushQueue is what pushing needs of the queue store, beside Queue.
type PushQueue interface {
	// Peek returns up to limit of a party's waiting messages, oldest
	// first, after the position after ("" for the oldest), without taking
	// them: a pull still can. next is the position of the last one
	// returned, to page on from.
	Peek(ctx context.Context, party, after string, limit int) (msgs []Message, next string, err error)
	// Lease takes, or renews, the right named name for holder until ttl
	// passes; false when another holder has it. Gateways sharing a queue
	// push each party's inbox from one of them at a time.
	Lease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// PushState returns the state of a message for a subscription (zero when none).
	PushState(ctx context.Context, sub, doc string) (PushState, error)
	// SetPushState stores it; the zero state removes it.
	SetPushState(ctx context.Context, sub, doc string, st PushState) error
	// LogAttempt keeps an attempt in the subscription's log (the newest 1000).
	LogAttempt(ctx context.Context, sub string, a Attempt) error
	// Attempts returns the newest attempts first.
	Attempts(ctx context.Context, sub string, limit int) ([]Attempt, error)
}

// SubscriptionRequest is what a party asks for.
type SubscriptionRequest struct {
	URL         string
	Types       []string
	Refs        []string
	Description string
}

// maxSubscriptions bounds a party's subscriptions.
const maxSubscriptions = 20

// SecretOverlap is how long a rotated-out secret keeps signing.
const SecretOverlap = 24 * time.Hour

func newSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:]), nil
}

func (s *Service) subscriptions() (Subscriptions, error) {
	st, ok := s.Parties.(Subscriptions)
	if !ok {
		return nil, Errorf(CodeNotFound, "this gateway's storage keeps no subscriptions")
	}
	return st, nil
}

// Subscribe creates a subscription and returns it with its secret, the
// only time the secret is shown.
func (s *Service) Subscribe(ctx context.Context, caller Party, req SubscriptionRequest) (Subscription, string, error) {
	store, err := s.subscriptions()
	if err != nil {
		return Subscription{}, "", err
	}
	var problems []schemas.Problem
	if len(req.URL) > 2000 {
		problems = append(problems, schemas.Problem{Pointer: "/url", Detail: "at most 2000 characters"})
	} else if s.URLCheck != nil {
		if err := s.URLCheck(ctx, req.URL); err != nil {
			problems = append(problems, schemas.Problem{Pointer: "/url", Detail: err.Error()})
		}
	}
	for i, t := range req.Types {
		if !slices.Contains(pushTypes(), t) {
			problems = append(problems, schemas.Problem{Pointer: fmt.Sprintf("/types/%d", i), Detail: fmt.Sprintf("%q is not a message type; use one of %s", t, strings.Join(pushTypes(), ", "))})
		}
	}
	for i, r := range req.Refs {
		if len(r) > 64 || NormalizeRef(r) == "" {
			problems = append(problems, schemas.Problem{Pointer: fmt.Sprintf("/refs/%d", i), Detail: "a one bill number"})
		}
		req.Refs[i] = NormalizeRef(r)
	}
	if len(req.Types) > 20 || len(req.Refs) > 100 || len(req.Description) > 500 {
		problems = append(problems, schemas.Problem{Pointer: "", Detail: "at most 20 types, 100 refs and a description of 500 characters"})
	}
	if len(problems) > 0 {
		return Subscription{}, "", &Error{Code: CodeInvalid, Message: "the subscription is not valid", Problems: problems}
	}
	all, err := store.ListSubscriptions(ctx)
	if err != nil {
		return Subscription{}, "", err
	}
	if n := len(slices.DeleteFunc(all, func(x Subscription) bool { return x.Party != caller.ID || x.Disabled })); n >= maxSubscriptions {
		return Subscription{}, "", Errorf(CodeConflict, "you have %d subscriptions, the most a party may", n)
	}
	secret, err := newSecret()
	if err != nil {
		return Subscription{}, "", err
	}
	var id [10]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Subscription{}, "", err
	}
	sub := Subscription{ID: "sub_" + strings.ToLower(idEncoding.EncodeToString(id[:])), Party: caller.ID, URL: req.URL,
		Types: req.Types, Refs: req.Refs, Description: req.Description, CreatedAt: s.Now().UTC().Truncate(time.Second),
		Secrets: []Secret{{Value: secret}}}
	if err := store.PutSubscription(ctx, sub); err != nil {
		return Subscription{}, "", fmt.Errorf("store subscription: %w", err)
	}
	s.Logger.InfoContext(ctx, "subscription created", "id", sub.ID, "party", caller.ID)
	return sub.View(), secret, nil
}

// pushTypes are the message types a subscription may filter on.
func pushTypes() []string {
	var out []string
	for t := range routes {
		out = append(out, t)
	}
	out = append(out, TypeGrant, TypeTitle, TypeClearance)
	slices.Sort(out)
	return out
}

// MySubscription returns one of the caller's subscriptions; another
// party's is not found.
func (s *Service) MySubscription(ctx context.Context, caller Party, id string) (Subscription, error) {
	store, err := s.subscriptions()
	if err != nil {
		return Subscription{}, err
	}
	sub, err := store.Subscription(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && (sub.Party != caller.ID || (sub.Disabled && sub.DisabledReason == "deleted"))) {
		return Subscription{}, Errorf(CodeNotFound, "no subscription %s", id)
	}
	return sub, err
}

// MySubscriptions lists the caller's subscriptions.
func (s *Service) MySubscriptions(ctx context.Context, caller Party) ([]Subscription, error) {
	store, err := s.subscriptions()
	if err != nil {
		return nil, err
	}
	all, err := store.ListSubscriptions(ctx)
	if err != nil {
		return nil, err
	}
	out := []Subscription{}
	for _, sub := range all {
		if sub.Party == caller.ID && sub.DisabledReason != "deleted" {
			out = append(out, sub.View())
		}
	}
	return out, nil
}

// Unsubscribe deletes a subscription: nothing more is pushed to it, and
// what waits stays in the inbox for pull.
func (s *Service) Unsubscribe(ctx context.Context, caller Party, id string) error {
	sub, err := s.MySubscription(ctx, caller, id)
	if err != nil {
		return err
	}
	store, _ := s.subscriptions()
	return store.DeleteSubscription(ctx, sub.ID) // gone, not kept disabled: a create-delete loop leaves nothing behind
}

// DisableSubscription stops pushing to a receiver that said it is gone (410).
func (s *Service) DisableSubscription(ctx context.Context, id, reason string) error {
	store, err := s.subscriptions()
	if err != nil {
		return err
	}
	sub, err := store.Subscription(ctx, id)
	if err != nil {
		return err
	}
	sub.Disabled, sub.DisabledReason = true, reason
	return store.PutSubscription(ctx, sub)
}

// RotateSecret gives a subscription a new secret, shown once; the old one
// signs beside it for SecretOverlap, so receivers can switch without a gap.
func (s *Service) RotateSecret(ctx context.Context, caller Party, id string) (Subscription, string, error) {
	sub, err := s.MySubscription(ctx, caller, id)
	if err != nil {
		return Subscription{}, "", err
	}
	secret, err := newSecret()
	if err != nil {
		return Subscription{}, "", err
	}
	// The secret signing until now keeps signing for SecretOverlap; older
	// ones stop: however often it is rotated, two secrets sign at most.
	until := s.Now().UTC().Add(SecretOverlap).Truncate(time.Second)
	sub.Secrets = []Secret{{Value: secret}, {Value: sub.Secrets[0].Value, Until: &until}}
	store, _ := s.subscriptions()
	if err := store.PutSubscription(ctx, sub); err != nil {
		return Subscription{}, "", err
	}
	return sub.View(), secret, nil
}

// ActiveSubscriptions are the subscriptions to push to.
func (s *Service) ActiveSubscriptions(ctx context.Context) ([]Subscription, error) {
	store, err := s.subscriptions()
	if err != nil {
		return nil, nil // a storage without subscriptions pushes nothing
	}
	all, err := store.ListSubscriptions(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(x Subscription) bool { return x.Disabled }), nil
}

// pushQueue is the queue's push side.
func (s *Service) pushQueue() (PushQueue, error) {
	q, ok := s.Queue.(PushQueue)
	if !ok {
		return nil, Errorf(CodeNotFound, "this gateway's queue does not push")
	}
	return q, nil
}

// Deliveries lists a subscription's newest attempts, for its party.
func (s *Service) Deliveries(ctx context.Context, caller Party, id string, limit int) ([]Attempt, error) {
	if _, err := s.MySubscription(ctx, caller, id); err != nil {
		return nil, err
	}
	q, err := s.pushQueue()
	if err != nil {
		return nil, err
	}
	out, err := q.Attempts(ctx, id, limit)
	if out == nil {
		out = []Attempt{}
	}
	return out, err
}

// PushQueue exposes the queue's push side to the pusher.
func (s *Service) PushQueue() (PushQueue, error) { return s.pushQueue() }
