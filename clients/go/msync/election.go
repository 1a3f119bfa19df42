package msync

import (
	"context"
	"fmt"
	"io"
	"iter"
	"sync"
	"time"

	syncv1 "github.com/metaparticle-io/metaparticle-sync/clients/go/gen/metaparticle/sync/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"
)

// EventType says what happened in a campaign.
type EventType int

const (
	// Elected: this candidate leads; Event.Term and Event.Done are set.
	Elected EventType = iota + 1
	// Deposed: this candidate's term ended; Event.Reason says why. It stays a
	// candidate and may be elected again.
	Deposed
	// LeaderChanged: someone else leads, or nobody (Event.Leader is "").
	LeaderChanged
)

func (t EventType) String() string {
	switch t {
	case Elected:
		return "elected"
	case Deposed:
		return "deposed"
	case LeaderChanged:
		return "leader-changed"
	default:
		return fmt.Sprintf("EventType(%d)", int(t))
	}
}

// Event is one thing that happened in a campaign.
type Event struct {
	Type EventType
	// Term is the term elected or deposed, or the other leader's term.
	Term int64
	// Done, for Elected, is closed when that term ends: stop leading.
	Done <-chan struct{}
	// Leader and Value, for LeaderChanged, describe the other leader.
	Leader string
	Value  string
	// Reason and Message, for Deposed, say why the term ended.
	Reason  LossReason
	Message string
}

// Leader is the leader of an election as the sidecar observed it.
type Leader struct {
	// Leader is the leading candidate's name, or "" when nobody leads.
	Leader string
	Value  string
	Term   int64
}

type campaignConfig struct {
	candidate     string
	value         string
	leaseDuration time.Duration
}

// CampaignOption configures Client.Campaign; WithLeaseDuration is one too.
type CampaignOption interface {
	applyCampaign(*campaignConfig)
}

type campaignOptionFunc func(*campaignConfig)

func (f campaignOptionFunc) applyCampaign(c *campaignConfig) { f(c) }

// WithCandidate names this candidate, as others see it when it leads. The
// default is $MSYNC_CANDIDATE, else $POD_NAME, else host/pid.
func WithCandidate(candidate string) CampaignOption {
	return campaignOptionFunc(func(c *campaignConfig) { c.candidate = candidate })
}

// WithValue is proclaimed when this candidate is elected, for example its
// address.
func WithValue(value string) CampaignOption {
	return campaignOptionFunc(func(c *campaignConfig) { c.value = value })
}

// Campaign is this process's candidacy in an election. Range over Events
// until they end; the campaign ends with Resign, Close or the end of the context
// given to Client.Campaign, and then Err says whether the sidecar ended it
// with an error.
type Campaign struct {
	Name      string
	Candidate string

	elections syncv1.ElectionServiceClient
	request   *syncv1.CampaignRequest
	ctx       context.Context
	cancel    context.CancelFunc
	events    chan Event
	// wake tells deliver that pending grew or the stream ended.
	wake chan struct{}

	mu sync.Mutex
	// stream counts the Campaign streams opened; messages of a replaced one
	// are ignored. endStream cancels the current one.
	stream    int
	endStream context.CancelFunc
	leading   *term
	resigning bool
	pending   []Event
	finished  bool
	err       error
}

// term is one term of leadership, ended by the sidecar or by the client's
// own deadline.
type term struct {
	number   int64
	done     chan struct{}
	deadline time.Time
	watchdog *time.Timer
}

// Campaign joins the named election as a candidate:
//
//	campaign, err := c.Campaign(ctx, "scheduler", msync.WithValue(addr))
//	for event := range campaign.Events() {
//		if event.Type == msync.Elected { go lead(event.Done) }
//	}
//
// A refused request (for example a bad name) ends the events at once, and
// Err returns an *Error.
func (c *Client) Campaign(ctx context.Context, name string, options ...CampaignOption) (*Campaign, error) {
	cfg := campaignConfig{candidate: defaultName("MSYNC_CANDIDATE", "POD_NAME")}
	for _, option := range options {
		option.applyCampaign(&cfg)
	}
	request := &syncv1.CampaignRequest{Name: name, Candidate: cfg.candidate, Value: cfg.value}
	if cfg.leaseDuration != 0 {
		request.LeaseDuration = durationpb.New(cfg.leaseDuration)
	}
	ctx, cancel := context.WithCancel(ctx)
	campaign := &Campaign{
		Name:      name,
		Candidate: cfg.candidate,
		elections: c.Elections,
		request:   request,
		ctx:       ctx,
		cancel:    cancel,
		events:    make(chan Event),
		wake:      make(chan struct{}, 1),
	}
	if err := campaign.join(1); err != nil {
		cancel()
		return nil, err
	}
	go campaign.deliver()
	return campaign, nil
}

// join opens Campaign stream number n and follows it, unless the campaign
// ended or moved on meanwhile.
func (c *Campaign) join(n int) error {
	streamCtx, endStream := context.WithCancel(c.ctx)
	stream, err := c.elections.Campaign(streamCtx, c.request)
	if err != nil {
		endStream()
		return callError(c.ctx, err, nil)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished || c.stream >= n {
		endStream()
		return nil
	}
	c.stream = n
	c.endStream = endStream
	go c.follow(stream, n)
	return nil
}

// expired ends term t if its deadline passed with no heartbeat: the sidecar
// went quiet, or this process was paused. It stops leading at once and
// campaigns again on a new stream; closing the old one makes the sidecar give
// that term up, instead of renewing a leadership nobody acts on.
func (c *Campaign) expiredLocked(t *term) {
	if c.leading != t || time.Now().Before(t.deadline) {
		return
	}
	c.deposeLocked(ReasonHeartbeatTimeout, "no heartbeat from the sidecar before leadership stopped being valid")
	if c.resigning || c.finished || c.ctx.Err() != nil {
		return
	}
	stale, current := c.endStream, c.stream
	go func() {
		if err := c.join(current + 1); err != nil {
			c.finish(err, nil, current)
		}
		stale()
	}()
}

// Events yields what happens to this candidate, in order, until the campaign
// ends, like Client.Observe yields leaders:
//
//	for event := range campaign.Events() { ... }
//
// Leaving the loop early does not end the campaign (Close, Resign or the
// context do); a later loop goes on with the next event.
func (c *Campaign) Events() iter.Seq[Event] {
	return func(yield func(Event) bool) {
		for event := range c.events {
			if !yield(event) {
				return
			}
		}
	}
}

// Err is why the campaign ended: nil while it runs and after Resign or
// Close, else the sidecar's *Error.
func (c *Campaign) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Proclaim publishes a new value to observers; only the leader may.
func (c *Campaign) Proclaim(ctx context.Context, value string) error {
	number, err := c.currentTerm("proclaim")
	if err != nil {
		return err
	}
	var trailer metadata.MD
	_, err = c.elections.Proclaim(ctx, &syncv1.ProclaimRequest{Name: c.Name, Term: number, Value: value}, grpc.Trailer(&trailer))
	if err != nil {
		return callError(ctx, err, trailer)
	}
	return nil
}

// Resign steps down now and ends the campaign; another candidate is elected
// at once.
func (c *Campaign) Resign(ctx context.Context) error {
	number, err := c.currentTerm("resign")
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.resigning = true
	c.mu.Unlock()
	var trailer metadata.MD
	if _, err := c.elections.Resign(ctx, &syncv1.ResignRequest{Name: c.Name, Term: number}, grpc.Trailer(&trailer)); err != nil {
		c.mu.Lock()
		c.resigning = false
		c.mu.Unlock()
		return callError(ctx, err, trailer)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deposeLocked(ReasonReleased, "this candidate resigned")
	return nil
}

// Close leaves the campaign, giving up leadership at once if leading.
func (c *Campaign) Close() {
	c.mu.Lock()
	c.deposeLocked(ReasonReleased, "the campaign was closed")
	c.mu.Unlock()
	c.cancel()
}

func (c *Campaign) currentTerm(action string) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leading == nil {
		return 0, &Error{Code: codes.FailedPrecondition, Message: fmt.Sprintf("cannot %s election %s: this candidate is not the leader", action, c.Name)}
	}
	return c.leading.number, nil
}

// follow turns the messages of stream number n into events until it ends or
// is replaced.
func (c *Campaign) follow(stream syncv1.ElectionService_CampaignClient, n int) {
	for {
		message, err := stream.Recv()
		if err != nil {
			c.finish(err, stream.Trailer(), n)
			return
		}
		c.mu.Lock()
		if c.stream != n {
			c.mu.Unlock()
			return
		}
		switch event := message.GetEvent().(type) {
		case *syncv1.CampaignResponse_Elected:
			c.deposeLocked(ReasonTakenOver, "elected again with a new term")
			validFor := event.Elected.GetValidFor().AsDuration()
			t := &term{number: event.Elected.GetTerm(), done: make(chan struct{}), deadline: time.Now().Add(validFor)}
			t.watchdog = time.AfterFunc(validFor, func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				c.expiredLocked(t)
			})
			c.leading = t
			c.emitLocked(Event{Type: Elected, Term: t.number, Done: t.done})
		case *syncv1.CampaignResponse_Renewed:
			if t := c.leading; t != nil {
				// A heartbeat that comes after the deadline (say, read after
				// this process was paused) does not revive the term.
				c.expiredLocked(t)
				if c.leading == t {
					validFor := event.Renewed.GetValidFor().AsDuration()
					t.deadline = time.Now().Add(validFor)
					t.watchdog.Reset(validFor)
				}
			}
		case *syncv1.CampaignResponse_Deposed:
			if c.leading != nil && c.leading.number == event.Deposed.GetTerm() {
				c.deposeLocked(lossReason(event.Deposed.GetReason()), event.Deposed.GetMessage())
			}
		case *syncv1.CampaignResponse_LeaderChanged:
			changed := event.LeaderChanged
			// The sidecar tells a candidate only of others' terms, so ours
			// is over; say so first, in order.
			if c.resigning {
				c.deposeLocked(ReasonReleased, "this candidate resigned")
			} else {
				c.deposeLocked(ReasonTakenOver, "another term began")
			}
			c.emitLocked(Event{Type: LeaderChanged, Leader: changed.GetLeader(), Value: changed.GetValue(), Term: changed.GetTerm()})
		}
		c.mu.Unlock()
	}
}

// finish ends the current term, if any, and records why stream number n
// ended; a replaced stream's end changes nothing.
func (c *Campaign) finish(err error, trailer metadata.MD, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != n || c.finished {
		return
	}
	switch {
	case c.resigning:
		c.deposeLocked(ReasonReleased, "this candidate resigned")
	case c.ctx.Err() != nil:
		c.deposeLocked(ReasonReleased, "the campaign was closed")
	case err == io.EOF:
		c.deposeLocked(ReasonStreamEnded, "the sidecar ended the campaign")
	default:
		c.err = callError(c.ctx, err, trailer)
		c.deposeLocked(ReasonStreamEnded, c.err.Error())
	}
	c.finished = true
	c.wakeLocked()
}

// deposeLocked ends the current term on this side, if any: close its Done
// channel at once, then report it as an event.
func (c *Campaign) deposeLocked(reason LossReason, message string) {
	t := c.leading
	if t == nil {
		return
	}
	c.leading = nil
	t.watchdog.Stop()
	close(t.done)
	c.emitLocked(Event{Type: Deposed, Term: t.number, Reason: reason, Message: message})
}

// emitLocked queues an event without blocking, so a slow reader of Events
// never delays the heartbeat deadline.
func (c *Campaign) emitLocked(event Event) {
	c.pending = append(c.pending, event)
	c.wakeLocked()
}

func (c *Campaign) wakeLocked() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// deliver hands queued events to the reader of Events, and closes it once
// the stream ended and everything was delivered, or the campaign was
// closed.
func (c *Campaign) deliver() {
	defer close(c.events)
	for {
		c.mu.Lock()
		if len(c.pending) == 0 {
			finished := c.finished
			c.mu.Unlock()
			if finished {
				return
			}
			select {
			case <-c.wake:
				continue
			case <-c.ctx.Done():
				return
			}
		}
		next := c.pending[0]
		c.mu.Unlock()
		select {
		case c.events <- next:
			c.mu.Lock()
			c.pending = c.pending[1:]
			c.mu.Unlock()
		case <-c.ctx.Done():
			return
		}
	}
}

// Observe yields the current leader of the named election at once and then
// every change, without campaigning, until ctx ends or the loop stops:
//
//	for leader, err := range c.Observe(ctx, "scheduler") { ... }
//
// A failure is yielded once as err, and ends the sequence.
func (c *Client) Observe(ctx context.Context, name string) iter.Seq2[Leader, error] {
	return func(yield func(Leader, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := c.Elections.Observe(ctx, &syncv1.ObserveRequest{Name: name})
		if err != nil {
			if ctx.Err() == nil {
				yield(Leader{}, callError(ctx, err, nil))
			}
			return
		}
		for {
			message, err := stream.Recv()
			if err == io.EOF || ctx.Err() != nil {
				return
			}
			if err != nil {
				yield(Leader{}, callError(ctx, err, stream.Trailer()))
				return
			}
			if !yield(Leader{Leader: message.GetLeader(), Value: message.GetValue(), Term: message.GetTerm()}, nil) {
				return
			}
		}
	}
}
