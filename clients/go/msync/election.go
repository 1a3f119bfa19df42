package msync

import (
	"context"
	"fmt"
	"io"
	"iter"
	"sync"
	"time"

	syncv1 "github.com/metaparticle-io/metaparticle-sync/clients/go/gen/metaparticle/sync/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
)

// EventType says what happened in a campaign.
type EventType int

const (
	// Elected: this candidate leads; Event.Term, Event.Context and
	// Event.Done are set.
	Elected EventType = iota + 1
	// Deposed: this candidate's term ended; Event.Reason says why. It stays a
	// candidate and may be elected again, unless it resigned or the campaign
	// ended. Deposed with ReasonShutdown ends the campaign: its stream is
	// closed at once, so the sidecar hands the leadership on, the events end
	// and Err reports codes.Unavailable.
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
	// Context, for Elected, is cancelled when that term ends, as client-go
	// hands OnStartedLeading a context: lead with it, and stop when it is
	// done. context.Cause(Context) is then a *LostError saying why (or the
	// cause of the context given to Client.Campaign, if that ended first).
	Context context.Context
	// Done, for Elected, is Context.Done(): closed when that term ends.
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

	elections   syncv1.ElectionServiceClient
	callTimeout time.Duration
	request     *syncv1.CampaignRequest
	ctx         context.Context
	cancel      context.CancelFunc

	mu sync.Mutex
	// stream counts the Campaign streams opened; messages of a replaced one
	// are ignored. endStream cancels the current one.
	stream    int
	endStream context.CancelFunc
	leading   *term
	// resigned is set the moment Resign is called, whatever becomes of it:
	// from then on no term is reported elected, and the campaign is not
	// joined again.
	resigned bool
	// pending holds the events not yet taken by a reader of Events; changed
	// is closed, and replaced, when it grows or the campaign finishes.
	pending  []Event
	changed  chan struct{}
	finished bool
	err      error
}

// term is one term of leadership, ended by the sidecar or by the client's
// own deadline.
type term struct {
	number   int64
	ctx      context.Context
	end      context.CancelCauseFunc
	deadline time.Time
	watchdog *time.Timer
}

// Campaign joins the named election as a candidate:
//
//	campaign, err := c.Campaign(ctx, "scheduler", msync.WithValue(addr))
//	for event := range campaign.Events() {
//		if event.Type == msync.Elected { go lead(event.Context) }
//	}
//
// ctx bounds the whole campaign, which otherwise lasts until Resign or
// Close: there is no other deadline, but a sidecar that stops answering ends
// the current term at its heartbeat deadline, and the campaign, with
// codes.Unavailable, once gRPC keepalive gives up on the connection.
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
		Name:        name,
		Candidate:   cfg.candidate,
		elections:   c.Elections,
		callTimeout: c.callTimeout,
		request:     request,
		ctx:         ctx,
		cancel:      cancel,
		changed:     make(chan struct{}),
	}
	if err := campaign.join(1); err != nil {
		cancel()
		return nil, err
	}
	return campaign, nil
}

// join opens Campaign stream number n and follows it, unless the campaign
// ended or moved on meanwhile.
func (c *Campaign) join(n int) error {
	streamCtx, endStream := context.WithCancel(c.ctx)
	stream, err := c.elections.Campaign(streamCtx, c.request)
	if err != nil {
		endStream()
		return callError(c.ctx, err)
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

// expiredLocked ends term t if its deadline passed with no heartbeat: the sidecar
// went quiet, or this process was paused. It stops leading at once and
// campaigns again on a new stream; closing the old one makes the sidecar give
// that term up, instead of renewing a leadership nobody acts on.
func (c *Campaign) expiredLocked(t *term) {
	if c.leading != t || time.Now().Before(t.deadline) {
		return
	}
	c.deposeLocked(ReasonHeartbeatTimeout, "no heartbeat from the sidecar before leadership stopped being valid")
	if c.resigned || c.finished || c.ctx.Err() != nil {
		return
	}
	stale, current := c.endStream, c.stream
	go func() {
		if err := c.join(current + 1); err != nil {
			c.finish(err, current)
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
// context do); a later loop goes on with the next event. Events are kept
// for a reader, so a slow one never delays the heartbeat deadline.
func (c *Campaign) Events() iter.Seq[Event] {
	return func(yield func(Event) bool) {
		for {
			event, ok := c.next()
			if !ok || !yield(event) {
				return
			}
		}
	}
}

// next takes the oldest event not yet taken, waiting for one; false once the
// campaign finished and every event was taken.
func (c *Campaign) next() (Event, bool) {
	c.mu.Lock()
	for {
		if len(c.pending) > 0 {
			event := c.pending[0]
			c.pending[0] = Event{}
			c.pending = c.pending[1:]
			c.mu.Unlock()
			return event, true
		}
		if c.finished {
			c.mu.Unlock()
			return Event{}, false
		}
		changed := c.changed
		c.mu.Unlock()
		<-changed
		c.mu.Lock()
	}
}

// Err is why the campaign ended: nil while it runs and after Resign or
// Close, else the sidecar's *Error.
func (c *Campaign) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Proclaim publishes a new value to observers; only the leader may. Without
// a deadline in ctx, the call is bounded by the client's call timeout
// (DefaultCallTimeout).
func (c *Campaign) Proclaim(ctx context.Context, value string) error {
	number, err := c.currentTerm("proclaim")
	if err != nil {
		return err
	}
	callCtx, cancel := callContext(ctx, c.callTimeout)
	defer cancel()
	if _, err := c.elections.Proclaim(callCtx, &syncv1.ProclaimRequest{Name: c.Name, Term: number, Value: value}); err != nil {
		return callError(ctx, err)
	}
	return nil
}

// Resign steps down and ends the campaign; another candidate is elected at
// once. From the moment it is called, whatever it returns, this campaign
// reports no term as elected again: the current term, if any, ends at once
// (its Context is cancelled, and one Deposed event with ReasonReleased says
// so), and the events end once the campaign is closed.
//
// If this candidate leads, Resign waits for the sidecar to give the
// leadership back, until ctx's deadline (the client's call timeout,
// DefaultCallTimeout, without one) or until the term's last promise runs
// out, whichever comes first; only an unanswered Resign while the promise
// still ran is an error (codes.DeadlineExceeded), and the sidecar then gives
// the leadership up when it can, as the campaign's stream is closed. A
// candidate that does not lead just leaves, like etcd's Election.Resign, and
// gets nil; so does a second call.
func (c *Campaign) Resign(ctx context.Context) error {
	c.mu.Lock()
	if c.resigned || c.finished {
		c.mu.Unlock()
		return nil
	}
	c.resigned = true
	t := c.leading
	var promise time.Time
	if t != nil {
		promise = t.deadline
	}
	c.deposeLocked(ReasonReleased, "this candidate resigned")
	c.mu.Unlock()
	defer c.leave()
	if t == nil {
		return nil
	}

	return giveBack(ctx, c.callTimeout, promise, func(callCtx context.Context) error {
		_, err := c.elections.Resign(callCtx, &syncv1.ResignRequest{Name: c.Name, Term: t.number})
		return err
	})
}

// Close leaves the campaign, giving up leadership at once if leading.
func (c *Campaign) Close() {
	c.mu.Lock()
	c.deposeLocked(ReasonReleased, "the campaign was closed")
	c.mu.Unlock()
	c.leave()
}

// leave ends the campaign: closing its stream makes the sidecar give up the
// candidacy, and any leadership left; the events end once read.
func (c *Campaign) leave() {
	c.mu.Lock()
	if !c.finished {
		c.finished = true
		c.changedLocked()
	}
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
			c.finish(err, n)
			return
		}
		c.mu.Lock()
		if c.stream != n || c.finished {
			c.mu.Unlock()
			return
		}
		switch event := message.GetEvent().(type) {
		case *syncv1.CampaignResponse_Elected:
			if c.resigned {
				// The sidecar may elect this candidate again before it serves
				// the Resign; the user asked to step down, so it is not told.
				break
			}
			c.deposeLocked(ReasonTakenOver, "elected again with a new term")
			validFor := event.Elected.GetValidFor().AsDuration()
			t := &term{number: event.Elected.GetTerm(), deadline: time.Now().Add(validFor)}
			t.ctx, t.end = context.WithCancelCause(c.ctx)
			t.watchdog = time.AfterFunc(validFor, func() {
				c.mu.Lock()
				defer c.mu.Unlock()
				c.expiredLocked(t)
			})
			c.leading = t
			c.emitLocked(Event{Type: Elected, Term: t.number, Context: t.ctx, Done: t.ctx.Done()})
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
			if event.Deposed.GetReason() == syncv1.LossReason_LOSS_REASON_SHUTDOWN {
				// The sidecar is shutting down: the campaign is over. Closing
				// the stream at once is the acknowledgement the sidecar waits
				// for before it gives the Lease back (docs/design.md 3.7), so
				// another candidate is elected at once. The campaign ends as
				// the stream's end would have ended it, and is not joined again.
				c.err = &Error{Code: codes.Unavailable, Reason: "SHUTTING_DOWN", Message: "the daemon is shutting down"}
				c.finished = true
				c.changedLocked()
				c.mu.Unlock()
				c.cancel()
				return
			}
		case *syncv1.CampaignResponse_LeaderChanged:
			changed := event.LeaderChanged
			// The sidecar tells a candidate only of others' terms, so ours
			// is over; say so first, in order.
			c.deposeLocked(ReasonTakenOver, "another term began")
			c.emitLocked(Event{Type: LeaderChanged, Leader: changed.GetLeader(), Value: changed.GetValue(), Term: changed.GetTerm()})
		}
		c.mu.Unlock()
	}
}

// finish ends the current term, if any, and records why stream number n
// ended; a replaced stream's end changes nothing.
func (c *Campaign) finish(err error, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream != n || c.finished {
		return
	}
	switch {
	case c.resigned:
		c.deposeLocked(ReasonReleased, "this candidate resigned")
	case c.ctx.Err() != nil:
		c.deposeLocked(ReasonReleased, "the campaign was closed")
	case err == io.EOF:
		c.deposeLocked(ReasonStreamEnded, "the sidecar ended the campaign")
	default:
		c.err = callError(c.ctx, err)
		c.deposeLocked(ReasonStreamEnded, c.err.Error())
	}
	c.finished = true
	c.changedLocked()
	// Nothing of the campaign is left to cancel but its context's hold on
	// the caller's.
	c.cancel()
}

// deposeLocked ends the current term on this side, if any: cancel its
// context at once, then report it as an event.
func (c *Campaign) deposeLocked(reason LossReason, message string) {
	t := c.leading
	if t == nil {
		return
	}
	c.leading = nil
	t.watchdog.Stop()
	t.end(&LostError{Reason: reason, Message: message})
	c.emitLocked(Event{Type: Deposed, Term: t.number, Reason: reason, Message: message})
}

// emitLocked queues an event for the readers of Events, without blocking.
func (c *Campaign) emitLocked(event Event) {
	c.pending = append(c.pending, event)
	c.changedLocked()
}

func (c *Campaign) changedLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
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
				yield(Leader{}, callError(ctx, err))
			}
			return
		}
		for {
			message, err := stream.Recv()
			if err == io.EOF || ctx.Err() != nil {
				return
			}
			if err != nil {
				yield(Leader{}, callError(ctx, err))
				return
			}
			if !yield(Leader{Leader: message.GetLeader(), Value: message.GetValue(), Term: message.GetTerm()}, nil) {
				return
			}
		}
	}
}
