package msync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	syncv1 "github.com/metaparticle-io/metaparticle-sync/clients/go/gen/metaparticle/sync/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// session is what a lock from Lock and a permit from AcquirePermit share: a
// hold that an open stream keeps, renewed by the sidecar, with the client's
// own deadline from the heartbeats, Lost and Err. Its exported methods are
// those of Lock and Permit.
type session struct {
	// what names the hold in messages: "lock db-migration".
	what  string
	token int64
	// endStream cancels the stream, which gives the hold back.
	endStream   context.CancelFunc
	callTimeout time.Duration
	lost        chan struct{}

	mu       sync.Mutex
	err      error
	deadline time.Time
	watchdog *time.Timer
}

// openSession opens an Acquire or AcquirePermit stream and waits for its
// first message. The stream must outlive ctx (it holds what it acquires), so
// it gets a context of its own that ctx, or the wait timeout on this
// client's clock, cancels only while we are still waiting. On success the
// caller owns endStream.
func openSession[M any](ctx context.Context, what string, wait time.Duration, open func(context.Context) (grpc.ServerStreamingClient[M], error)) (grpc.ServerStreamingClient[M], *M, context.CancelFunc, error) {
	streamCtx, endStream := context.WithCancel(context.WithoutCancel(ctx))
	stopWaiting := context.AfterFunc(ctx, endStream)
	waitClock := time.AfterFunc(max(wait, 0)+waitGrace, endStream)
	stream, err := open(streamCtx)
	var first *M
	if err == nil {
		first, err = stream.Recv()
	}
	inTime := waitClock.Stop()
	if !stopWaiting() || !inTime {
		// ctx or the wait clock ended the wait, perhaps just as the hold
		// arrived: the stream is cancelled, so it is given back if it was
		// granted.
		endStream()
		if ctx.Err() != nil {
			return nil, nil, nil, callError(ctx, ctx.Err())
		}
		return nil, nil, nil, deadlineError(reasonWaitTimeout, "%s: no answer from the sidecar within the wait timeout of %v", what, wait)
	}
	if err == io.EOF {
		endStream()
		return nil, nil, nil, &Error{Code: codes.Unavailable, Message: fmt.Sprintf("the sidecar ended the stream before %s was acquired", what)}
	}
	if err != nil {
		endStream()
		err = callError(ctx, err)
		// The stream has no deadline of its own, so the sidecar's
		// DEADLINE_EXCEEDED is the wait timeout, even from a sidecar too old
		// to say so in an ErrorInfo.
		var refused *Error
		if errors.As(err, &refused) && refused.Code == codes.DeadlineExceeded && ctx.Err() == nil && refused.Reason == "" {
			refused.Reason = reasonWaitTimeout
		}
		return nil, nil, nil, err
	}
	return stream, first, endStream, nil
}

// notAcquired is the error for a stream whose first message was not
// `acquired`; it ends the stream.
func notAcquired(what string, endStream context.CancelFunc) error {
	endStream()
	return &Error{Code: codes.Internal, Message: fmt.Sprintf("the sidecar's first message for %s was not `acquired`", what)}
}

// start arms the client's own deadline with the first valid_for and follows
// the stream's events; recv reads the next one, as a renewal or a loss.
func (s *session) start(validFor time.Duration, recv func() (*syncv1.Renewed, *syncv1.Lost, error)) {
	s.lost = make(chan struct{})
	s.heartbeat(validFor)
	go s.follow(recv)
}

// Lost is closed when the hold is lost or released: stop acting.
func (s *session) Lost() <-chan struct{} {
	return s.lost
}

// Err is nil while the hold lasts, and then a *LostError saying why not.
func (s *session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// ValidFor is how much longer the holder may act without another heartbeat.
func (s *session) ValidFor() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0
	}
	return max(0, time.Until(s.deadline))
}

// release closes Lost (reason released), then gives the hold back with call
// and waits for the answer as giveBack does. Once the hold has ended it
// returns nil at once.
func (s *session) release(ctx context.Context, call func(context.Context) error) error {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return nil
	}
	// From here on a `lost` or the end of the stream is the release itself,
	// not a loss: end ignores them.
	s.err = &LostError{Reason: ReasonReleased, Message: fmt.Sprintf("%s was released", s.what)}
	if s.watchdog != nil {
		s.watchdog.Stop()
	}
	close(s.lost)
	promise := s.deadline
	s.mu.Unlock()
	// The sidecar ends the stream once it gave the hold back; cancelling it
	// in any case makes it give back a hold whose release went unanswered.
	defer s.endStream()

	return giveBack(ctx, s.callTimeout, promise, call)
}

// giveBack makes an acknowledged Release, ReleasePermit or Resign: it waits
// for the sidecar's answer until the call's deadline or the end of the
// promise, whichever comes first. A token, hold or term the sidecar no longer
// has (lost, or run out, just now) and a promise that ran out first are not
// errors: the hold is over either way.
func giveBack(ctx context.Context, callTimeout time.Duration, promise time.Time, call func(context.Context) error) error {
	callCtx, cancel := callContext(ctx, callTimeout)
	defer cancel()
	callCtx, cancelAtPromise := context.WithDeadline(callCtx, promise)
	defer cancelAtPromise()
	err := call(callCtx)
	if err == nil || status.Code(err) == codes.FailedPrecondition || !time.Now().Before(promise) {
		return nil
	}
	return callError(ctx, err)
}

// follow reads the heartbeats until the stream ends.
func (s *session) follow(recv func() (*syncv1.Renewed, *syncv1.Lost, error)) {
	for {
		renewed, lost, err := recv()
		switch {
		case err != nil:
			// Nothing changes if the hold already ended, which cancelled the stream.
			s.end(ReasonStreamEnded, fmt.Sprintf("the sidecar ended the stream of %s: %v", s.what, err))
			return
		case renewed != nil:
			s.heartbeat(renewed.GetValidFor().AsDuration())
		case lost != nil:
			s.end(lossReason(lost.GetReason()), lost.GetMessage())
		}
	}
}

// heartbeat moves the client's own deadline: time.Time carries a monotonic
// reading, so wall-clock steps do not move it.
func (s *session) heartbeat(validFor time.Duration) {
	s.mu.Lock()
	if s.err == nil && s.watchdog != nil && !time.Now().Before(s.deadline) {
		// Read after the deadline (say, this process was paused): the hold
		// already stopped being valid here, and a late heartbeat does not revive it.
		s.mu.Unlock()
		s.end(ReasonHeartbeatTimeout, s.expiredMessage())
		return
	}
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.deadline = time.Now().Add(validFor)
	if s.watchdog == nil {
		s.watchdog = time.AfterFunc(validFor, func() {
			s.end(ReasonHeartbeatTimeout, s.expiredMessage())
		})
	} else {
		s.watchdog.Reset(validFor)
	}
}

func (s *session) expiredMessage() string {
	return fmt.Sprintf("no heartbeat from the sidecar before %s (token %d) stopped being valid", s.what, s.token)
}

// end records the first reason the hold ended, closes Lost and cancels the
// stream, which tells the sidecar to give the hold back. It reports whether
// this call ended it.
func (s *session) end(reason LossReason, message string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false
	}
	s.err = &LostError{Reason: reason, Message: message}
	if s.watchdog != nil {
		s.watchdog.Stop()
	}
	close(s.lost)
	s.endStream()
	return true
}
