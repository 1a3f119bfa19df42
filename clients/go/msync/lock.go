package msync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	syncv1 "github.com/metaparticle-io/metaparticle-sync/clients/go/gen/metaparticle/sync/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

type lockConfig struct {
	holder        string
	leaseDuration time.Duration
	waitTimeout   *time.Duration
}

// LockOption configures Client.Lock and Client.TryLock.
type LockOption interface {
	applyLock(*lockConfig)
}

type lockOptionFunc func(*lockConfig)

func (f lockOptionFunc) applyLock(c *lockConfig) { f(c) }

// WithHolder names the holder for people and tools that inspect the lock.
// The default is $MSYNC_HOLDER, else host/pid.
func WithHolder(holder string) LockOption {
	return lockOptionFunc(func(c *lockConfig) { c.holder = holder })
}

// LeaseDurationOption is what WithLeaseDuration returns: an option of locks
// and campaigns alike.
type LeaseDurationOption struct {
	d time.Duration
}

func (o LeaseDurationOption) applyLock(c *lockConfig)         { c.leaseDuration = o.d }
func (o LeaseDurationOption) applyCampaign(c *campaignConfig) { c.leaseDuration = o.d }

// WithLeaseDuration sets how long a lock or a leadership outlives a sidecar
// that stopped renewing it, in whole seconds. The default is the sidecar's
// (15 s). It is an option of Lock, TryLock and Campaign.
func WithLeaseDuration(d time.Duration) LeaseDurationOption {
	return LeaseDurationOption{d: d}
}

// WithWaitTimeout makes Lock give up if the lock is not free within d; zero
// gives up at once if it is held. The default is DefaultWaitTimeout; the
// sidecar allows at most 24 hours. The error is an *Error with
// codes.DeadlineExceeded for which errors.Is(err, ErrWaitTimeout) and
// errors.Is(err, context.DeadlineExceeded) are true. The sidecar is told the
// wait timeout, and the client also keeps it on its own clock: should the
// sidecar not answer (frozen, say), Lock gives up one second after d.
func WithWaitTimeout(d time.Duration) LockOption {
	return lockOptionFunc(func(c *lockConfig) { c.waitTimeout = &d })
}

// Lock is a held lock. It stays held, renewed by the sidecar, until Unlock.
// Lost is closed the moment the holder must stop acting: the sidecar reported
// the lock lost, its heartbeats stopped, or Unlock was called.
type Lock struct {
	Name string
	// Token is the fencing token: strictly greater than every earlier token
	// of this lock. Pass it to the resources you write to.
	Token         int64
	Holder        string
	AcquireTime   time.Time
	LeaseDuration time.Duration

	// endStream cancels the Acquire stream, which releases the lock.
	endStream   context.CancelFunc
	locks       syncv1.LockServiceClient
	callTimeout time.Duration
	lost        chan struct{}

	mu       sync.Mutex
	err      error
	deadline time.Time
	watchdog *time.Timer
}

// Lock waits for the named lock and holds it until Unlock:
//
//	lock, err := c.Lock(ctx, "db-migration")
//	if err != nil { return err }
//	defer lock.Unlock(context.WithoutCancel(ctx))
//
// The wait is bounded by the wait timeout (WithWaitTimeout, else
// DefaultWaitTimeout) and by ctx; once acquired, the lock is held until
// Unlock, whatever becomes of ctx. A refused request returns an *Error.
func (c *Client) Lock(ctx context.Context, name string, options ...LockOption) (*Lock, error) {
	cfg := lockConfig{holder: defaultName("MSYNC_HOLDER")}
	for _, option := range options {
		option.applyLock(&cfg)
	}
	wait := DefaultWaitTimeout
	if cfg.waitTimeout != nil {
		wait = *cfg.waitTimeout
	}
	request := &syncv1.AcquireRequest{Name: name, Holder: cfg.holder, WaitTimeout: durationpb.New(wait)}
	if cfg.leaseDuration != 0 {
		request.LeaseDuration = durationpb.New(cfg.leaseDuration)
	}

	// The stream must outlive ctx (it holds the lock), so it gets a context
	// of its own that ctx, or the wait timeout on this client's clock,
	// cancels only while we are still waiting.
	streamCtx, endStream := context.WithCancel(context.WithoutCancel(ctx))
	stopWaiting := context.AfterFunc(ctx, endStream)
	waitClock := time.AfterFunc(max(wait, 0)+waitGrace, endStream)
	stream, err := c.Locks.Acquire(streamCtx, request)
	var first *syncv1.AcquireResponse
	if err == nil {
		first, err = stream.Recv()
	}
	inTime := waitClock.Stop()
	if !stopWaiting() || !inTime {
		// ctx or the wait clock ended the wait, perhaps just as the lock
		// arrived: the stream is cancelled, so the lock is released if it
		// was granted.
		endStream()
		if ctx.Err() != nil {
			return nil, callError(ctx, ctx.Err())
		}
		return nil, deadlineError(reasonWaitTimeout, "lock %s: no answer from the sidecar within the wait timeout of %v", name, wait)
	}
	if err == io.EOF {
		endStream()
		return nil, &Error{Code: codes.Unavailable, Message: fmt.Sprintf("the sidecar ended the stream before lock %s was acquired", name)}
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
		return nil, err
	}
	acquired := first.GetAcquired()
	if acquired == nil {
		endStream()
		return nil, &Error{Code: codes.Internal, Message: fmt.Sprintf("the sidecar's first message for lock %s was not `acquired`", name)}
	}

	lock := &Lock{
		Name:          name,
		Token:         acquired.GetFencingToken(),
		Holder:        acquired.GetHolder(),
		AcquireTime:   acquired.GetAcquireTime().AsTime(),
		LeaseDuration: acquired.GetLeaseDuration().AsDuration(),
		endStream:     endStream,
		locks:         c.Locks,
		callTimeout:   c.callTimeout,
		lost:          make(chan struct{}),
	}
	lock.heartbeat(acquired.GetValidFor().AsDuration())
	go lock.follow(stream)
	return lock, nil
}

// Lost is closed when the lock is lost or released: stop acting.
func (l *Lock) Lost() <-chan struct{} {
	return l.lost
}

// Err is nil while the lock is held, and then a *LostError saying why not.
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// ValidFor is how much longer the holder may act without another heartbeat.
func (l *Lock) ValidFor() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return 0
	}
	return max(0, time.Until(l.deadline))
}

// Unlock releases the lock and returns once the sidecar has given it back,
// so the next waiter can have it from then on. Lost closes at once, and Err
// says ReasonReleased: stop acting when you call Unlock.
//
// Unlock waits for the sidecar's answer until ctx's deadline (the client's
// call timeout, DefaultCallTimeout, without one) or until the lock's last
// promise (ValidFor) runs out, whichever comes first. Once the promise ran
// out, the lock is no longer this holder's anyway and Unlock returns nil;
// before that, an unanswered release is an error with codes.DeadlineExceeded
// (errors.Is(err, context.DeadlineExceeded)), and the sidecar releases the
// lock as soon as it can. Pass a context that is still live: for example
// context.WithoutCancel(ctx) in a defer after the work's own ctx may have
// been cancelled.
//
// It is safe to call more than once, and after the lock was lost: then it
// returns nil at once.
func (l *Lock) Unlock(ctx context.Context) error {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return nil
	}
	// From here on a `lost` or the end of the stream is the release itself,
	// not a loss: end ignores them.
	l.err = &LostError{Reason: ReasonReleased, Message: fmt.Sprintf("lock %s was released", l.Name)}
	if l.watchdog != nil {
		l.watchdog.Stop()
	}
	close(l.lost)
	promise := l.deadline
	l.mu.Unlock()
	// The sidecar ends the stream once it released the lock; cancelling it
	// in any case makes it release a lock whose Release went unanswered.
	defer l.endStream()

	return giveBack(ctx, l.callTimeout, promise, func(callCtx context.Context) error {
		_, err := l.locks.Release(callCtx, &syncv1.ReleaseRequest{Name: l.Name, FencingToken: l.Token})
		return err
	})
}

// giveBack makes an acknowledged Release or Resign: it waits for the
// sidecar's answer until the call's deadline or the end of the promise,
// whichever comes first. A token or term the sidecar no longer holds (lost,
// or run out, just now) and a promise that ran out first are not errors: the
// hold is over either way.
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
func (l *Lock) follow(stream syncv1.LockService_AcquireClient) {
	for {
		message, err := stream.Recv()
		if err != nil {
			// Nothing changes if the lock already ended, which cancelled the stream.
			l.end(ReasonStreamEnded, fmt.Sprintf("the sidecar ended the stream of lock %s: %v", l.Name, err))
			return
		}
		switch event := message.GetEvent().(type) {
		case *syncv1.AcquireResponse_Renewed:
			l.heartbeat(event.Renewed.GetValidFor().AsDuration())
		case *syncv1.AcquireResponse_Lost:
			l.end(lossReason(event.Lost.GetReason()), event.Lost.GetMessage())
		}
	}
}

// heartbeat moves the client's own deadline: time.Time carries a monotonic
// reading, so wall-clock steps do not move it.
func (l *Lock) heartbeat(validFor time.Duration) {
	l.mu.Lock()
	if l.err == nil && l.watchdog != nil && !time.Now().Before(l.deadline) {
		// Read after the deadline (say, this process was paused): the lock
		// already stopped being valid here, and a late heartbeat does not revive it.
		l.mu.Unlock()
		l.end(ReasonHeartbeatTimeout, fmt.Sprintf("no heartbeat from the sidecar before lock %s (token %d) stopped being valid", l.Name, l.Token))
		return
	}
	defer l.mu.Unlock()
	if l.err != nil {
		return
	}
	l.deadline = time.Now().Add(validFor)
	if l.watchdog == nil {
		l.watchdog = time.AfterFunc(validFor, func() {
			l.end(ReasonHeartbeatTimeout, fmt.Sprintf("no heartbeat from the sidecar before lock %s (token %d) stopped being valid", l.Name, l.Token))
		})
	} else {
		l.watchdog.Reset(validFor)
	}
}

// end records the first reason the lock ended, closes Lost and cancels the
// stream, which tells the sidecar to release the lock. It reports whether
// this call ended it.
func (l *Lock) end(reason LossReason, message string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return false
	}
	l.err = &LostError{Reason: reason, Message: message}
	if l.watchdog != nil {
		l.watchdog.Stop()
	}
	close(l.lost)
	l.endStream()
	return true
}
