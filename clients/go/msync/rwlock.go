package msync

import (
	"context"
	"fmt"
	"time"

	syncv1 "github.com/metaparticle-io/metaparticle-sync/clients/go/gen/metaparticle/sync/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
)

// A read-write lock is held shared by any number of readers at once, or
// exclusive by one writer. A waiting writer is not starved: readers that ask
// after it wait behind it. A hold is kept the two ways a lock is, with the
// same options, deadlines and client-side deadline on its promise:
// AcquireRWLock (an RWHold, kept by the sidecar while its stream is open) and
// TryAcquireRWLock (an RWLease that the caller renews). Two shared holds may
// carry the same fencing token, so each hold is renewed and released by its
// own HoldID, never by its token.

// Mode is how a read-write lock is held: Shared or Exclusive. In a request,
// the zero Mode asks for Exclusive, the safe default, as the sidecar reads an
// unset mode; in an RWLockInfo it means the lock is not held.
type Mode string

const (
	// Shared is a read hold: other shared holds at once, no exclusive one.
	Shared Mode = "shared"
	// Exclusive is a write hold: no other hold of the name at once.
	Exclusive Mode = "exclusive"
)

// modeField is mode for a request. A Mode that is neither Shared, Exclusive
// nor zero is sent as a value the sidecar refuses (INVALID_ARGUMENT naming
// mode) rather than as another mode, as permitsField does for N.
func modeField(mode Mode) syncv1.LockMode {
	switch mode {
	case Shared:
		return syncv1.LockMode_LOCK_MODE_SHARED
	case Exclusive:
		return syncv1.LockMode_LOCK_MODE_EXCLUSIVE
	case "":
		return syncv1.LockMode_LOCK_MODE_UNSPECIFIED
	}
	return -1
}

// modeOf is the sidecar's mode; "" for unspecified (not held).
func modeOf(mode syncv1.LockMode) Mode {
	switch mode {
	case syncv1.LockMode_LOCK_MODE_SHARED:
		return Shared
	case syncv1.LockMode_LOCK_MODE_EXCLUSIVE:
		return Exclusive
	}
	return ""
}

// describeHold names a hold in messages: "the shared hold of read-write lock
// catalog".
func describeHold(name string, mode Mode) string {
	if mode == "" {
		mode = Exclusive
	}
	return fmt.Sprintf("the %s hold of read-write lock %s", mode, name)
}

// RWGrant is what the sidecar granted: the part an RWHold and an RWLease
// share.
type RWGrant struct {
	// Name is the read-write lock's.
	Name string
	// Mode is how the lock is held: Shared or Exclusive.
	Mode Mode
	// HoldID names this hold in the sidecar; Renew and Release use it.
	HoldID string
	// Token is the fencing token. An exclusive hold's is strictly greater
	// than every earlier token of this lock; a shared hold's is the token of
	// the last exclusive hold before it (0 if none), the same for every
	// reader since then. Pass it to the resources you read from or write to.
	Token int64
	// Holder is the holder name (WithHolder, else $MSYNC_HOLDER or host/pid).
	Holder string
	// AcquireTime is when the sidecar wrote the acquisition, by its wall
	// clock, for display only.
	AcquireTime time.Time
	// LeaseDuration is the lease the hold was taken with.
	LeaseDuration time.Duration
}

func newRWGrant(name string, acquired *syncv1.RWLockAcquired) RWGrant {
	return RWGrant{
		Name:          name,
		Mode:          modeOf(acquired.GetMode()),
		HoldID:        acquired.GetHoldId(),
		Token:         acquired.GetFencingToken(),
		Holder:        acquired.GetHolder(),
		AcquireTime:   acquired.GetAcquireTime().AsTime(),
		LeaseDuration: acquired.GetLeaseDuration().AsDuration(),
	}
}

// releaseCall is the ReleaseRWLock call of this hold, for the release of an
// RWHold or an RWLease.
func (g *RWGrant) releaseCall(rwlocks syncv1.RWLockServiceClient) func(context.Context) error {
	return func(callCtx context.Context) error {
		_, err := rwlocks.ReleaseRWLock(callCtx, &syncv1.ReleaseRWLockRequest{Name: g.Name, HoldId: g.HoldID})
		return err
	}
}

// RWHold is a held read-write lock, shared or exclusive, kept and renewed by
// the sidecar until Release. Lost is closed the moment the holder must stop
// acting: the sidecar reported the hold lost, its heartbeats stopped, or
// Release was called; Err then says why, and ValidFor is how much longer the
// holder may act without another heartbeat.
type RWHold struct {
	RWGrant

	session
	rwlocks syncv1.RWLockServiceClient
}

// AcquireRWLock waits until the named read-write lock can be held in mode
// (Shared or Exclusive) and holds it so until Release:
//
//	hold, err := c.AcquireRWLock(ctx, "catalog", msync.Shared)
//	if err != nil { return err }
//	defer hold.Release(context.WithoutCancel(ctx))
//
// It takes the options of Lock, and its wait is bounded the same way: by the
// wait timeout (WithWaitTimeout, else DefaultWaitTimeout), sent to the
// sidecar and kept on this client's clock too, and by ctx. Once acquired, the
// hold lasts until Release, whatever becomes of ctx. A mode other than Shared
// or Exclusive is refused with ErrInvalidArgument naming "mode".
func (c *Client) AcquireRWLock(ctx context.Context, name string, mode Mode, options ...LockOption) (*RWHold, error) {
	cfg := newLockConfig(options)
	wait := cfg.wait()
	request := &syncv1.AcquireRWLockRequest{
		Name:          name,
		Mode:          modeField(mode),
		Holder:        cfg.holder,
		WaitTimeout:   durationpb.New(wait),
		LeaseDuration: optionalDuration(cfg.leaseDuration),
	}

	what := describeHold(name, mode)
	stream, first, endStream, err := openSession(ctx, what, wait, func(streamCtx context.Context) (grpc.ServerStreamingClient[syncv1.AcquireRWLockResponse], error) {
		return c.RWLocks.AcquireRWLock(streamCtx, request)
	})
	if err != nil {
		return nil, err
	}
	acquired := first.GetAcquired()
	if acquired == nil {
		return nil, notAcquired(what, endStream)
	}

	hold := &RWHold{
		RWGrant: newRWGrant(name, acquired),
		session: session{what: what, token: acquired.GetFencingToken(), endStream: endStream, callTimeout: c.callTimeout},
		rwlocks: c.RWLocks,
	}
	hold.start(acquired.GetValidFor().AsDuration(), func() (*syncv1.Renewed, *syncv1.Lost, error) {
		event, err := stream.Recv()
		return event.GetRenewed(), event.GetLost(), err
	})
	return hold, nil
}

// Release gives the hold back by its HoldID and returns once the sidecar has
// done so, so a writer waiting for it can have the lock from then on; it is
// Lock.Unlock for a read-write hold, with the same bounds: ctx's deadline
// (DefaultCallTimeout without one) or the end of the hold's last promise,
// whichever comes first. Lost closes at once, and Err says ReasonReleased. It
// is safe to call more than once, and after the hold was lost.
func (h *RWHold) Release(ctx context.Context) error {
	return h.release(ctx, h.releaseCall(h.rwlocks))
}

// RWLease is a read-write lock hold taken with TryAcquireRWLock: held for its
// lease duration unless renewed, and given back with Release. Nothing renews
// it for you; Lost is closed when the last ValidFor runs out without a
// renewal, or on Release.
type RWLease struct {
	RWGrant

	leaseClock
	rwlocks syncv1.RWLockServiceClient
}

// RWLockNotFreeError is TryAcquireRWLock's error when the lock cannot be
// held in the mode asked now; errors.Is(err, ErrNotFree) is true for it.
type RWLockNotFreeError struct {
	Name string
	// Mode is the mode that was asked for.
	Mode Mode
	// State is the lock as the sidecar saw it when the attempt failed. Its
	// Mode may be "" while the lock is free but a waiting writer comes first.
	State RWLockInfo
}

func (e *RWLockNotFreeError) Error() string {
	var why string
	switch e.State.Mode {
	case Exclusive:
		why = fmt.Sprintf("held exclusive by %s with token %d", e.State.Holder, e.State.Token)
	case Shared:
		why = fmt.Sprintf("held shared by %d readers", e.State.SharedHolds())
	default:
		why = fmt.Sprintf("%d sidecars wait for it", len(e.State.WaitingDaemons))
	}
	return fmt.Sprintf("msync: read-write lock %s cannot be held %s now: %s", e.Name, e.Mode, why)
}

// Is makes errors.Is(err, ErrNotFree) true.
func (e *RWLockNotFreeError) Is(target error) bool {
	return target == ErrNotFree
}

// TryAcquireRWLock makes one attempt at the named read-write lock in mode
// (Shared or Exclusive), without waiting. If the lock cannot be held so now,
// the error is an *RWLockNotFreeError with the lock's state, and
// errors.Is(err, ErrNotFree) is true. Only WithHolder and WithLeaseDuration
// apply. Without a deadline in ctx, the call is bounded by the client's call
// timeout (DefaultCallTimeout).
func (c *Client) TryAcquireRWLock(ctx context.Context, name string, mode Mode, options ...LockOption) (*RWLease, error) {
	cfg := newLockConfig(options)
	request := &syncv1.TryAcquireRWLockRequest{Name: name, Mode: modeField(mode), Holder: cfg.holder, LeaseDuration: optionalDuration(cfg.leaseDuration)}
	callCtx, cancel := callContext(ctx, c.callTimeout)
	defer cancel()
	response, err := c.RWLocks.TryAcquireRWLock(callCtx, request)
	if err != nil {
		return nil, callError(ctx, err)
	}
	if !response.GetAcquired() {
		if mode == "" {
			mode = Exclusive
		}
		return nil, &RWLockNotFreeError{Name: name, Mode: mode, State: rwLockInfo(response.GetState())}
	}
	lease := &RWLease{
		RWGrant:    newRWGrant(name, response.GetHold()),
		leaseClock: leaseClock{callTimeout: c.callTimeout},
		rwlocks:    c.RWLocks,
	}
	lease.start(response.GetHold().GetValidFor().AsDuration())
	return lease, nil
}

// Renew extends the hold's lease, by d if given (whole seconds) or else by
// its duration, and returns how long the holder may now act. A hold the
// sidecar no longer has (it ran out, or was released) gives ErrNotHeld, with
// Error.Field "hold_id".
func (l *RWLease) Renew(ctx context.Context, d ...time.Duration) (time.Duration, error) {
	request := &syncv1.RenewRWLockRequest{Name: l.Name, HoldId: l.HoldID, LeaseDuration: renewalDuration(d)}
	return l.renew(ctx, func(callCtx context.Context) (*durationpb.Duration, error) {
		response, err := l.rwlocks.RenewRWLock(callCtx, request)
		return response.GetValidFor(), err
	})
}

// Release gives the hold back by its HoldID and returns once the sidecar has
// done so. A hold the sidecar no longer has (it ran out, or was released
// before) gives ErrNotHeld. Without a deadline in ctx, the call is bounded by
// the client's call timeout (DefaultCallTimeout).
func (l *RWLease) Release(ctx context.Context) error {
	return l.release(ctx, l.releaseCall(l.rwlocks))
}

// ReaderSeat is the shared holds of a read-write lock through one sidecar,
// which share one entry in the lock.
type ReaderSeat struct {
	// HolderIdentity is the identity of the sidecar process.
	HolderIdentity string
	// Holder is the holder name of that sidecar's first reader.
	Holder string
	// Readers is how many shared holds the sidecar has.
	Readers int
	// Remaining is how long until the seat's lease expires unless renewed.
	Remaining time.Duration
}

// RWLockInfo is a read-write lock as the sidecar observed it.
type RWLockInfo struct {
	// Held is true while some hold's lease has not expired, as the sidecar
	// observed it.
	Held bool
	// Mode is how the lock is held; "" when it is not.
	Mode Mode
	// Holder and HolderIdentity name the exclusive holder and its sidecar,
	// when the lock is held exclusive.
	Holder         string
	HolderIdentity string
	// Token is the token of the current or last exclusive hold; 0 if the
	// lock was never held exclusive.
	Token int64
	// AcquireTime is when the exclusive holder acquired the lock, by the
	// wall clock of the sidecar that wrote it; zero when not held exclusive.
	AcquireTime time.Time
	// Remaining is how long until the exclusive hold's lease expires unless
	// renewed.
	Remaining time.Duration
	// Readers has one seat per sidecar whose clients hold the lock shared.
	Readers []ReaderSeat
	// WaitingDaemons are the identities of the sidecars waiting for the
	// lock, in the order they will be served.
	WaitingDaemons []string
}

// SharedHolds is how many shared holds the lock has, summed over every
// sidecar's seat.
func (i RWLockInfo) SharedHolds() int {
	n := 0
	for _, seat := range i.Readers {
		n += seat.Readers
	}
	return n
}

// GetRWLock inspects the named read-write lock; one never used is not an
// error (Held is false, Mode "" and Token 0). Without a deadline in ctx, the
// call is bounded by the client's call timeout (DefaultCallTimeout).
func (c *Client) GetRWLock(ctx context.Context, name string, options ...ReadOption) (RWLockInfo, error) {
	callCtx, cancel := callContext(ctx, c.callTimeout)
	defer cancel()
	r, err := c.RWLocks.GetRWLock(callCtx, &syncv1.GetRWLockRequest{Name: name, Consistency: consistency(options)})
	if err != nil {
		return RWLockInfo{}, callError(ctx, err)
	}
	return rwLockInfo(r), nil
}

func rwLockInfo(r *syncv1.GetRWLockResponse) RWLockInfo {
	info := RWLockInfo{
		Held:           r.GetHeld(),
		Mode:           modeOf(r.GetMode()),
		Holder:         r.GetHolder(),
		HolderIdentity: r.GetHolderIdentity(),
		Token:          r.GetFencingToken(),
		Remaining:      r.GetRemaining().AsDuration(),
		Readers:        make([]ReaderSeat, len(r.GetReaders())),
		WaitingDaemons: r.GetWaitingDaemons(),
	}
	if r.GetAcquireTime() != nil {
		info.AcquireTime = r.GetAcquireTime().AsTime()
	}
	for i, seat := range r.GetReaders() {
		info.Readers[i] = ReaderSeat{
			HolderIdentity: seat.GetHolderIdentity(),
			Holder:         seat.GetHolder(),
			Readers:        int(seat.GetReaders()),
			Remaining:      seat.GetRemaining().AsDuration(),
		}
	}
	return info
}
