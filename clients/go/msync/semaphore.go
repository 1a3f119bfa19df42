package msync

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	syncv1 "github.com/metaparticle-io/metaparticle-sync/clients/go/gen/metaparticle/sync/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
)

// A semaphore grants up to N holds of a name at once ("at most 3 replicas
// run the export"). N is fixed by the first caller of a name: every call
// names it, and a caller asking with another N gets ErrPermitsMismatch.
// A permit is held the two ways a lock is, with the same deadlines and the
// same client-side deadline on its promise: AcquirePermit (a Permit, kept
// by the sidecar while its stream is open) and TryAcquirePermit (a
// PermitLease that the caller renews). Each hold has its own fencing token.

// Permit is a held permit of a semaphore, kept and renewed by the sidecar
// until Release. Lost is closed the moment the holder must stop acting: the
// sidecar reported the permit lost, its heartbeats stopped, or Release was
// called; Err then says why, and ValidFor is how much longer the holder may
// act without another heartbeat.
type Permit struct {
	// Name is the semaphore's.
	Name string
	// HoldID names this hold in the sidecar; Release gives it back by it.
	HoldID string
	// Token is the fencing token: strictly greater than every earlier token
	// of this semaphore. Pass it to the resources you write to.
	Token         int64
	Holder        string
	AcquireTime   time.Time
	LeaseDuration time.Duration
	// Permits is the semaphore's N.
	Permits int

	session
	semaphores syncv1.SemaphoreServiceClient
}

// AcquirePermit waits for a permit of the named semaphore, which grants
// permits holds at once, and holds it until Release:
//
//	permit, err := c.AcquirePermit(ctx, "export", 3)
//	if err != nil { return err }
//	defer permit.Release(context.WithoutCancel(ctx))
//
// It takes the options of Lock, and its wait is bounded the same way: by the
// wait timeout (WithWaitTimeout, else DefaultWaitTimeout), sent to the
// sidecar and kept on this client's clock too, and by ctx. Once acquired, the
// permit is held until Release, whatever becomes of ctx.
func (c *Client) AcquirePermit(ctx context.Context, name string, permits int, options ...LockOption) (*Permit, error) {
	cfg := newLockConfig(options)
	wait := cfg.wait()
	request := &syncv1.AcquirePermitRequest{
		Name:          name,
		Permits:       permitsField(permits),
		Holder:        cfg.holder,
		WaitTimeout:   durationpb.New(wait),
		LeaseDuration: optionalDuration(cfg.leaseDuration),
	}

	what := "a permit of semaphore " + name
	stream, first, endStream, err := openSession(ctx, what, wait, func(streamCtx context.Context) (grpc.ServerStreamingClient[syncv1.AcquirePermitResponse], error) {
		return c.Semaphores.AcquirePermit(streamCtx, request)
	})
	if err != nil {
		return nil, err
	}
	acquired := first.GetAcquired()
	if acquired == nil {
		return nil, notAcquired(what, endStream)
	}

	permit := &Permit{
		Name:          name,
		HoldID:        acquired.GetHoldId(),
		Token:         acquired.GetFencingToken(),
		Holder:        acquired.GetHolder(),
		AcquireTime:   acquired.GetAcquireTime().AsTime(),
		LeaseDuration: acquired.GetLeaseDuration().AsDuration(),
		Permits:       int(acquired.GetPermits()),
		session:       session{what: what, token: acquired.GetFencingToken(), endStream: endStream, callTimeout: c.callTimeout},
		semaphores:    c.Semaphores,
	}
	permit.start(acquired.GetValidFor().AsDuration(), func() (*syncv1.Renewed, *syncv1.Lost, error) {
		message, err := stream.Recv()
		return message.GetRenewed(), message.GetLost(), err
	})
	return permit, nil
}

// Release gives the permit back by its hold and returns once the sidecar has
// done so, so the next waiter can have it from then on; it is Lock.Unlock
// for a permit, with the same bounds: ctx's deadline (DefaultCallTimeout
// without one) or the end of the permit's last promise, whichever comes
// first. Lost closes at once, and Err says ReasonReleased. It is safe to
// call more than once, and after the permit was lost.
func (p *Permit) Release(ctx context.Context) error {
	return p.release(ctx, releasePermit(p.semaphores, p.Name, p.HoldID))
}

// releasePermit is the ReleasePermit call of one hold, for the release of a
// Permit or a PermitLease.
func releasePermit(semaphores syncv1.SemaphoreServiceClient, name, holdID string) func(context.Context) error {
	return func(callCtx context.Context) error {
		_, err := semaphores.ReleasePermit(callCtx, &syncv1.ReleasePermitRequest{Name: name, HoldId: holdID})
		return err
	}
}

// PermitLease is a permit taken with TryAcquirePermit: held for its lease
// duration unless renewed, and given back with Release. Nothing renews it
// for you; Lost is closed when the last ValidFor runs out without a renewal.
type PermitLease struct {
	// Name is the semaphore's.
	Name string
	// HoldID names this hold in the sidecar; Renew and Release use it.
	HoldID string
	// Token is the fencing token: strictly greater than every earlier token
	// of this semaphore.
	Token  int64
	Holder string
	// Permits is the semaphore's N.
	Permits int

	leaseClock
	semaphores syncv1.SemaphoreServiceClient
}

// NoPermitFreeError is TryAcquirePermit's error when every permit is held;
// errors.Is(err, ErrNotFree) is true for it.
type NoPermitFreeError struct {
	Name string
	// Holders are the semaphore's holds. A hold through another sidecar has
	// Token 0: the sidecars record only how many permits each one holds.
	Holders []PermitHolder
}

func (e *NoPermitFreeError) Error() string {
	names := make([]string, len(e.Holders))
	for i, holder := range e.Holders {
		names[i] = holder.Holder
	}
	return fmt.Sprintf("msync: no permit of semaphore %s is free; held by %s", e.Name, strings.Join(names, ", "))
}

// Is makes errors.Is(err, ErrNotFree) true.
func (e *NoPermitFreeError) Is(target error) bool {
	return target == ErrNotFree
}

// TryAcquirePermit makes one attempt at a permit of the named semaphore,
// which grants permits holds at once, without waiting. If none is free, the
// error is a *NoPermitFreeError listing the holders, and errors.Is(err,
// ErrNotFree) is true. Only WithHolder and WithLeaseDuration apply. Without
// a deadline in ctx, the call is bounded by the client's call timeout
// (DefaultCallTimeout).
func (c *Client) TryAcquirePermit(ctx context.Context, name string, permits int, options ...LockOption) (*PermitLease, error) {
	cfg := newLockConfig(options)
	request := &syncv1.TryAcquirePermitRequest{Name: name, Permits: permitsField(permits), Holder: cfg.holder, LeaseDuration: optionalDuration(cfg.leaseDuration)}
	callCtx, cancel := callContext(ctx, c.callTimeout)
	defer cancel()
	response, err := c.Semaphores.TryAcquirePermit(callCtx, request)
	if err != nil {
		return nil, callError(ctx, err)
	}
	if !response.GetAcquired() {
		return nil, &NoPermitFreeError{Name: name, Holders: permitHolders(response.GetHolders())}
	}
	hold := response.GetHold()
	lease := &PermitLease{
		Name:       name,
		HoldID:     hold.GetHoldId(),
		Token:      hold.GetFencingToken(),
		Holder:     hold.GetHolder(),
		Permits:    int(hold.GetPermits()),
		leaseClock: leaseClock{callTimeout: c.callTimeout},
		semaphores: c.Semaphores,
	}
	lease.start(hold.GetValidFor().AsDuration())
	return lease, nil
}

// Renew extends the permit's lease, by d if given (whole seconds) or else by
// its duration, and returns how long the holder may now act. A hold the
// sidecar no longer has (it ran out) gives ErrNotHeld.
func (l *PermitLease) Renew(ctx context.Context, d ...time.Duration) (time.Duration, error) {
	request := &syncv1.RenewPermitRequest{Name: l.Name, HoldId: l.HoldID, LeaseDuration: renewalDuration(d)}
	return l.renew(ctx, func(callCtx context.Context) (*durationpb.Duration, error) {
		response, err := l.semaphores.RenewPermit(callCtx, request)
		return response.GetValidFor(), err
	})
}

// Release gives the permit back; the next waiter gets it at once. A hold the
// sidecar no longer has (it ran out, or was released before) gives
// ErrNotHeld.
func (l *PermitLease) Release(ctx context.Context) error {
	return l.release(ctx, releasePermit(l.semaphores, l.Name, l.HoldID))
}

// PermitHolder is one hold of a semaphore's permit, as the sidecar observed it.
type PermitHolder struct {
	Holder string
	// HolderIdentity is the identity of the sidecar process that holds it.
	HolderIdentity string
	// Token is the hold's fencing token; 0 for a hold through another sidecar.
	Token         int64
	AcquireTime   time.Time
	LeaseDuration time.Duration
	// Remaining is how long until the hold's lease expires unless renewed.
	Remaining time.Duration
}

// SemaphoreInfo is a semaphore as the sidecar observed it.
type SemaphoreInfo struct {
	// Permits is N; 0 for a semaphore never used.
	Permits int
	Holders []PermitHolder
	// Token is the last fencing token granted; 0 if none was.
	Token int64
	// WaitingDaemons are the identities of the sidecars waiting for a
	// permit, in the order they will be served.
	WaitingDaemons []string
}

// GetSemaphore inspects the named semaphore; one never used is not an
// error (its Permits is 0).
func (c *Client) GetSemaphore(ctx context.Context, name string, options ...ReadOption) (SemaphoreInfo, error) {
	callCtx, cancel := callContext(ctx, c.callTimeout)
	defer cancel()
	r, err := c.Semaphores.GetSemaphore(callCtx, &syncv1.GetSemaphoreRequest{Name: name, Consistency: consistency(options)})
	if err != nil {
		return SemaphoreInfo{}, callError(ctx, err)
	}
	return SemaphoreInfo{
		Permits:        int(r.GetPermits()),
		Holders:        permitHolders(r.GetHolders()),
		Token:          r.GetFencingToken(),
		WaitingDaemons: r.GetWaitingDaemons(),
	}, nil
}

// permitsField is N for a request. Out of int32's range it is clamped, not
// wrapped, so that the sidecar refuses it (INVALID_ARGUMENT naming permits)
// rather than reading another N.
func permitsField(permits int) int32 {
	return int32(min(max(permits, math.MinInt32), math.MaxInt32))
}

func permitHolders(holders []*syncv1.PermitHolder) []PermitHolder {
	out := make([]PermitHolder, len(holders))
	for i, h := range holders {
		out[i] = PermitHolder{
			Holder:         h.GetHolder(),
			HolderIdentity: h.GetHolderIdentity(),
			Token:          h.GetFencingToken(),
			LeaseDuration:  h.GetLeaseDuration().AsDuration(),
			Remaining:      h.GetRemaining().AsDuration(),
		}
		if h.GetAcquireTime() != nil {
			out[i].AcquireTime = h.GetAcquireTime().AsTime()
		}
	}
	return out
}
