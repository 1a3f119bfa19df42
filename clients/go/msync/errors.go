package msync

import (
	"context"
	"errors"
	"fmt"

	syncv1 "github.com/metaparticle-io/metaparticle-sync/clients/go/gen/metaparticle/sync/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a call the sidecar refused or could not serve, or a deadline that
// passed. status.Code(err) works on it, and errors.Is tells its kinds apart:
// the sentinels below, and context.DeadlineExceeded / context.Canceled for a
// call whose deadline passed or whose context was cancelled.
type Error struct {
	Code    codes.Code
	Message string
	// Field names the request field at fault, for codes.InvalidArgument (and
	// a semaphore's PERMITS_MISMATCH): the first field violation of the
	// google.rpc.BadRequest in the status details, e.g. "name" or
	// "lease_duration".
	Field string
	// Reason is the sidecar's google.rpc.ErrorInfo reason (domain
	// ErrorDomain), e.g. "NOT_HELD", "FOREIGN_LEASE", "WAIT_TIMEOUT",
	// "SHUTTING_DOWN", "PERMITS_MISMATCH"; "" when there is none. Lock,
	// AcquirePermit and AcquireRWLock set "WAIT_TIMEOUT" when their own clock
	// ends the wait.
	Reason string

	status *status.Status
}

// ErrorDomain is the google.rpc.ErrorInfo domain of the sidecar's errors.
const ErrorDomain = "sync.metaparticle.io"

const (
	reasonWaitTimeout     = "WAIT_TIMEOUT"
	reasonPermitsMismatch = "PERMITS_MISMATCH"
)

func (e *Error) Error() string {
	return fmt.Sprintf("msync: %s: %s", e.Code, e.Message)
}

// The kinds of failure a caller may act on, for errors.Is:
//
//	if errors.Is(err, msync.ErrNotFree) { ... }
var (
	// ErrNotHeld: the token is not the lock's current one, or the hold not
	// the semaphore's or the read-write lock's (FAILED_PRECONDITION), for
	// example a lease that ran out, or a term that ended.
	ErrNotHeld = errors.New("msync: not held")
	// ErrNotFree: TryLock found the lock held by someone else,
	// TryAcquirePermit found every permit held (a *NoPermitFreeError), or
	// TryAcquireRWLock could not hold the lock in the mode asked (an
	// *RWLockNotFreeError).
	ErrNotFree = errors.New("msync: held by someone else")
	// ErrPermitsMismatch: a semaphore call asked for another number of
	// permits than the semaphore has (FAILED_PRECONDITION, reason
	// PERMITS_MISMATCH; Error.Field is "permits"). Nothing was held.
	ErrPermitsMismatch = errors.New("msync: permits mismatch")
	// ErrUnavailable: the sidecar cannot be reached or cannot reach its store.
	ErrUnavailable = errors.New("msync: sidecar unavailable")
	// ErrInvalidArgument: the sidecar refused a request value; Error.Field names it.
	ErrInvalidArgument = errors.New("msync: invalid argument")
	// ErrWaitTimeout: Lock's (AcquirePermit's, AcquireRWLock's) wait timeout
	// passed before the lock (a permit, the read-write lock) was free.
	// Such an error is context.DeadlineExceeded too.
	ErrWaitTimeout = errors.New("msync: wait timeout")
)

// Is reports the kind of failure, so errors.Is(err, ErrNotHeld),
// errors.Is(err, context.DeadlineExceeded) and the others work on an *Error.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotHeld:
		return e.Code == codes.FailedPrecondition && e.Reason != reasonPermitsMismatch
	case ErrPermitsMismatch:
		return e.Code == codes.FailedPrecondition && e.Reason == reasonPermitsMismatch
	case ErrUnavailable:
		return e.Code == codes.Unavailable
	case ErrInvalidArgument:
		return e.Code == codes.InvalidArgument
	case ErrWaitTimeout:
		return e.Code == codes.DeadlineExceeded && e.Reason == reasonWaitTimeout
	case context.DeadlineExceeded:
		return e.Code == codes.DeadlineExceeded
	case context.Canceled:
		return e.Code == codes.Canceled
	}
	return false
}

// GRPCStatus lets status.FromError and status.Code see the code, and the
// sidecar's details.
func (e *Error) GRPCStatus() *status.Status {
	if e.status != nil {
		return e.status
	}
	return status.New(e.Code, e.Message)
}

// callError turns a failed call into an *Error. ctx is the caller's own
// context: if it ended, that is what the error says; otherwise a
// DEADLINE_EXCEEDED is the call's own deadline (or the sidecar's wait
// timeout). The details are read from the standard grpc-status-details-bin
// trailer.
func callError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		code := codes.Canceled
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			code = codes.DeadlineExceeded
		}
		return &Error{Code: code, Message: fmt.Sprintf("the caller's context ended: %v", context.Cause(ctx))}
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Code: st.Code(), Message: st.Message(), status: st}
	for _, detail := range st.Details() {
		switch detail := detail.(type) {
		case *errdetails.BadRequest:
			if violations := detail.GetFieldViolations(); len(violations) > 0 && e.Field == "" {
				e.Field = violations[0].GetField()
			}
		case *errdetails.ErrorInfo:
			if detail.GetDomain() == ErrorDomain {
				e.Reason = detail.GetReason()
			}
		}
	}
	return e
}

// deadlineError is a deadline that passed on this client's clock.
func deadlineError(reason, format string, args ...any) *Error {
	return &Error{Code: codes.DeadlineExceeded, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// LossReason says why a lock, a read-write hold, a permit or a term of
// leadership ended.
type LossReason string

const (
	// ReasonRenewDeadlineExceeded: the sidecar could not renew in time.
	ReasonRenewDeadlineExceeded LossReason = "renew-deadline-exceeded"
	// ReasonTakenOver: the lease shows another holder.
	ReasonTakenOver LossReason = "taken-over"
	// ReasonShutdown: the sidecar is shutting down and released it.
	ReasonShutdown LossReason = "shutdown"
	// ReasonDeleted: someone deleted the Lease.
	ReasonDeleted LossReason = "deleted"
	// ReasonHeartbeatTimeout: no heartbeat arrived before the last one ran
	// out; the sidecar may be frozen or gone.
	ReasonHeartbeatTimeout LossReason = "heartbeat-timeout"
	// ReasonStreamEnded: the sidecar ended the stream without saying why.
	ReasonStreamEnded LossReason = "stream-ended"
	// ReasonReleased: this client released the lock, read-write hold or
	// permit, or resigned.
	ReasonReleased LossReason = "released"
	// ReasonUnknown: a reason this client version does not know.
	ReasonUnknown LossReason = "unknown"
)

func lossReason(reason syncv1.LossReason) LossReason {
	switch reason {
	case syncv1.LossReason_LOSS_REASON_RENEW_DEADLINE_EXCEEDED:
		return ReasonRenewDeadlineExceeded
	case syncv1.LossReason_LOSS_REASON_TAKEN_OVER:
		return ReasonTakenOver
	case syncv1.LossReason_LOSS_REASON_SHUTDOWN:
		return ReasonShutdown
	case syncv1.LossReason_LOSS_REASON_DELETED:
		return ReasonDeleted
	default:
		return ReasonUnknown
	}
}

// LostError says why a lock, a read-write hold, a permit or a term of
// leadership ended: Lock.Err, RWHold.Err and Permit.Err return it, and it is the context.Cause of an
// Elected event's Context once the term is over.
type LostError struct {
	Reason  LossReason
	Message string
}

func (e *LostError) Error() string {
	return fmt.Sprintf("msync: %s (%s)", e.Message, e.Reason)
}
