package msync

import (
	"context"
	"fmt"
	"sync"
	"time"

	syncv1 "github.com/metaparticle-io/metaparticle-sync/clients/go/gen/metaparticle/sync/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Lease is a lock taken with TryLock: held for its lease duration unless
// renewed, and given back with Release. Unlike Lock, nothing renews it for
// you; Lost is closed when the last ValidFor runs out without a renewal.
type Lease struct {
	Name string
	// Token is the fencing token: strictly greater than every earlier token
	// of this lock.
	Token  int64
	Holder string

	leaseClock
	locks syncv1.LockServiceClient
}

// TryLock makes one attempt at the named lock without waiting. If someone
// else holds it, the error is ErrNotFree (test it with errors.Is). Only
// WithHolder and WithLeaseDuration apply. Without a deadline in ctx, the
// call is bounded by the client's call timeout (DefaultCallTimeout).
func (c *Client) TryLock(ctx context.Context, name string, options ...LockOption) (*Lease, error) {
	cfg := newLockConfig(options)
	request := &syncv1.TryAcquireRequest{Name: name, Holder: cfg.holder, LeaseDuration: optionalDuration(cfg.leaseDuration)}
	callCtx, cancel := callContext(ctx, c.callTimeout)
	defer cancel()
	response, err := c.Locks.TryAcquire(callCtx, request)
	if err != nil {
		return nil, callError(ctx, err)
	}
	if !response.GetAcquired() {
		return nil, fmt.Errorf("lock %s is held by %s with token %d: %w", name, response.GetHolder(), response.GetFencingToken(), ErrNotFree)
	}
	lease := &Lease{
		Name:       name,
		Token:      response.GetFencingToken(),
		Holder:     cfg.holder,
		leaseClock: leaseClock{callTimeout: c.callTimeout},
		locks:      c.Locks,
	}
	lease.start(response.GetValidFor().AsDuration())
	return lease, nil
}

// Renew extends the lease, by d if given (whole seconds) or else by its
// duration, and returns how long the holder may now act. A lease that ran
// out and was taken by someone else gives ErrNotHeld.
func (l *Lease) Renew(ctx context.Context, d ...time.Duration) (time.Duration, error) {
	request := &syncv1.RenewRequest{Name: l.Name, FencingToken: l.Token, LeaseDuration: renewalDuration(d)}
	return l.renew(ctx, func(callCtx context.Context) (*durationpb.Duration, error) {
		response, err := l.locks.Renew(callCtx, request)
		return response.GetValidFor(), err
	})
}

// Release gives the lock back; the next waiter gets it at once. A lease
// that ran out and was taken by someone else gives ErrNotHeld.
func (l *Lease) Release(ctx context.Context) error {
	return l.release(ctx, func(callCtx context.Context) error {
		_, err := l.locks.Release(callCtx, &syncv1.ReleaseRequest{Name: l.Name, FencingToken: l.Token})
		return err
	})
}

// leaseClock is what a Lease and a PermitLease share: the client's own
// deadline from the last valid_for, and Lost. Its exported methods are
// theirs.
type leaseClock struct {
	callTimeout time.Duration
	lost        chan struct{}

	mu       sync.Mutex
	ended    bool
	deadline time.Time
	watchdog *time.Timer
}

func (l *leaseClock) start(validFor time.Duration) {
	l.lost = make(chan struct{})
	l.extend(validFor)
}

// renew makes a renewal call, which returns the new valid_for, and moves
// the deadline by it.
func (l *leaseClock) renew(ctx context.Context, call func(context.Context) (*durationpb.Duration, error)) (time.Duration, error) {
	callCtx, cancel := callContext(ctx, l.callTimeout)
	defer cancel()
	response, err := call(callCtx)
	if err != nil {
		return 0, callError(ctx, err)
	}
	validFor := response.AsDuration()
	l.extend(validFor)
	return validFor, nil
}

// release makes a release call, and ends the lease once it is answered.
func (l *leaseClock) release(ctx context.Context, call func(context.Context) error) error {
	callCtx, cancel := callContext(ctx, l.callTimeout)
	defer cancel()
	if err := call(callCtx); err != nil {
		return callError(ctx, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.endLocked()
	return nil
}

// Lost is closed when the lease runs out without a renewal, or is released.
func (l *leaseClock) Lost() <-chan struct{} {
	return l.lost
}

// ValidFor is how much longer the holder may act without renewing.
func (l *leaseClock) ValidFor() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return 0
	}
	return max(0, time.Until(l.deadline))
}

func (l *leaseClock) extend(validFor time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return
	}
	l.deadline = time.Now().Add(validFor)
	if l.watchdog != nil {
		l.watchdog.Stop()
	}
	l.watchdog = time.AfterFunc(validFor, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if !time.Now().Before(l.deadline) {
			l.endLocked()
		}
	})
}

func (l *leaseClock) endLocked() {
	if l.ended {
		return
	}
	l.ended = true
	if l.watchdog != nil {
		l.watchdog.Stop()
	}
	close(l.lost)
}

// renewalDuration is a Renew's optional new lease duration: unset keeps the
// current one.
func renewalDuration(d []time.Duration) *durationpb.Duration {
	if len(d) == 0 {
		return nil
	}
	return optionalDuration(d[0])
}

// LockInfo is a lock as the sidecar observed it.
type LockInfo struct {
	Held          bool
	Holder        string
	Token         int64
	AcquireTime   time.Time
	LeaseDuration time.Duration
	// Remaining is how long until the lease expires unless renewed.
	Remaining time.Duration
}

// ReadOption configures GetLock and GetLeader.
type ReadOption func(*syncv1.ReadConsistency)

// Fresh reads from the API server instead of the sidecar's watch cache.
func Fresh() ReadOption {
	return func(c *syncv1.ReadConsistency) { *c = syncv1.ReadConsistency_READ_CONSISTENCY_FRESH }
}

func consistency(options []ReadOption) syncv1.ReadConsistency {
	c := syncv1.ReadConsistency_READ_CONSISTENCY_CACHED
	for _, option := range options {
		option(&c)
	}
	return c
}

// GetLock inspects the named lock; a lock nobody holds is not an error.
func (c *Client) GetLock(ctx context.Context, name string, options ...ReadOption) (LockInfo, error) {
	callCtx, cancel := callContext(ctx, c.callTimeout)
	defer cancel()
	r, err := c.Locks.GetLock(callCtx, &syncv1.GetLockRequest{Name: name, Consistency: consistency(options)})
	if err != nil {
		return LockInfo{}, callError(ctx, err)
	}
	info := LockInfo{
		Held:          r.GetHeld(),
		Holder:        r.GetHolder(),
		Token:         r.GetFencingToken(),
		LeaseDuration: r.GetLeaseDuration().AsDuration(),
		Remaining:     r.GetRemaining().AsDuration(),
	}
	if r.GetAcquireTime() != nil {
		info.AcquireTime = r.GetAcquireTime().AsTime()
	}
	return info, nil
}

// GetLeader reads the named election's current leader; Leader is "" when
// nobody leads.
func (c *Client) GetLeader(ctx context.Context, name string, options ...ReadOption) (Leader, error) {
	callCtx, cancel := callContext(ctx, c.callTimeout)
	defer cancel()
	r, err := c.Elections.GetLeader(callCtx, &syncv1.GetLeaderRequest{Name: name, Consistency: consistency(options)})
	if err != nil {
		return Leader{}, callError(ctx, err)
	}
	return Leader{Leader: r.GetLeader(), Value: r.GetValue(), Term: r.GetTerm()}, nil
}
