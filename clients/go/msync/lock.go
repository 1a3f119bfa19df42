package msync

import (
	"context"
	"time"

	syncv1 "github.com/metaparticle-io/metaparticle-sync/clients/go/gen/metaparticle/sync/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
)

type lockConfig struct {
	holder        string
	leaseDuration time.Duration
	waitTimeout   *time.Duration
	nonFair       bool
}

// LockOption configures Client.Lock and Client.TryLock, and the same way a
// semaphore's Client.AcquirePermit and Client.TryAcquirePermit and a
// read-write lock's Client.AcquireRWLock and Client.TryAcquireRWLock.
type LockOption interface {
	applyLock(*lockConfig)
}

// newLockConfig applies options to the defaults.
func newLockConfig(options []LockOption) lockConfig {
	cfg := lockConfig{holder: defaultName("MSYNC_HOLDER")}
	for _, option := range options {
		option.applyLock(&cfg)
	}
	return cfg
}

// wait is how long a blocking acquire waits: WithWaitTimeout's, else
// DefaultWaitTimeout.
func (c lockConfig) wait() time.Duration {
	if c.waitTimeout != nil {
		return *c.waitTimeout
	}
	return DefaultWaitTimeout
}

type lockOptionFunc func(*lockConfig)

func (f lockOptionFunc) applyLock(c *lockConfig) { f(c) }

// WithHolder names the holder for people and tools that inspect the lock,
// the read-write lock or the semaphore. The default is $MSYNC_HOLDER, else
// host/pid.
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

// WithLeaseDuration sets how long a lock, a read-write hold, a permit or a
// leadership outlives a sidecar that stopped renewing it, in whole seconds.
// The default is the sidecar's (15 s). It is an option of Lock, TryLock,
// AcquireRWLock, TryAcquireRWLock, AcquirePermit, TryAcquirePermit and
// Campaign.
func WithLeaseDuration(d time.Duration) LeaseDurationOption {
	return LeaseDurationOption{d: d}
}

// WithWaitTimeout makes Lock (AcquirePermit, AcquireRWLock) give up if the
// lock (a permit, the read-write lock in the mode asked) is not free within
// d; zero gives up at once if it is not. The default is DefaultWaitTimeout;
// the sidecar allows at most 24 hours. The error is an *Error with
// codes.DeadlineExceeded for which errors.Is(err, ErrWaitTimeout) and
// errors.Is(err, context.DeadlineExceeded) are true. The sidecar is told the
// wait timeout, and the client also keeps it on its own clock: should the
// sidecar not answer (frozen, say), Lock gives up one second after d.
func WithWaitTimeout(d time.Duration) LockOption {
	return lockOptionFunc(func(c *lockConfig) { c.waitTimeout = &d })
}

// WithFair chooses how Lock waits among waiters of other sidecars. true, the
// default: first come, first served across sidecars. false: when a client of
// this lock's sidecar releases it, the sidecar may hand it straight to this
// waiter, one write, ahead of other sidecars' waiters, up to 16 grants in a
// row; more handoffs per second on a hot lock, at the cost of order. Only
// Lock takes it; the other calls ignore it.
func WithFair(fair bool) LockOption {
	return lockOptionFunc(func(c *lockConfig) { c.nonFair = !fair })
}

// fairness is the AcquireRequest's fairness for the choice of WithFair.
func (c lockConfig) fairness() syncv1.Fairness {
	if c.nonFair {
		return syncv1.Fairness_FAIRNESS_NON_FAIR
	}
	return syncv1.Fairness_FAIRNESS_UNSPECIFIED
}

// Lock is a held lock. It stays held, renewed by the sidecar, until Unlock.
// Lost is closed the moment the holder must stop acting: the sidecar reported
// the lock lost, its heartbeats stopped, or Unlock was called; Err then says
// why, and ValidFor is how much longer the holder may act without another
// heartbeat.
type Lock struct {
	Name string
	// Token is the fencing token: strictly greater than every earlier token
	// of this lock. Pass it to the resources you write to.
	Token         int64
	Holder        string
	AcquireTime   time.Time
	LeaseDuration time.Duration

	session
	locks syncv1.LockServiceClient
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
	cfg := newLockConfig(options)
	wait := cfg.wait()
	request := &syncv1.AcquireRequest{
		Name:          name,
		Holder:        cfg.holder,
		WaitTimeout:   durationpb.New(wait),
		LeaseDuration: optionalDuration(cfg.leaseDuration),
		Fairness:      cfg.fairness(),
	}

	what := "lock " + name
	stream, first, endStream, err := openSession(ctx, what, wait, func(streamCtx context.Context) (grpc.ServerStreamingClient[syncv1.AcquireResponse], error) {
		return c.Locks.Acquire(streamCtx, request)
	})
	if err != nil {
		return nil, err
	}
	acquired := first.GetAcquired()
	if acquired == nil {
		return nil, notAcquired(what, endStream)
	}

	lock := &Lock{
		Name:          name,
		Token:         acquired.GetFencingToken(),
		Holder:        acquired.GetHolder(),
		AcquireTime:   acquired.GetAcquireTime().AsTime(),
		LeaseDuration: acquired.GetLeaseDuration().AsDuration(),
		session:       session{what: what, token: acquired.GetFencingToken(), endStream: endStream, callTimeout: c.callTimeout},
		locks:         c.Locks,
	}
	lock.start(acquired.GetValidFor().AsDuration(), func() (*syncv1.Renewed, *syncv1.Lost, error) {
		message, err := stream.Recv()
		return message.GetRenewed(), message.GetLost(), err
	})
	return lock, nil
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
	return l.release(ctx, func(callCtx context.Context) error {
		_, err := l.locks.Release(callCtx, &syncv1.ReleaseRequest{Name: l.Name, FencingToken: l.Token})
		return err
	})
}

// optionalDuration is d for a request, or unset (the sidecar's default) for 0.
func optionalDuration(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}
