package msync

import (
	"context"
	"errors"
	"fmt"

	syncv1 "github.com/metaparticle-io/metaparticle-sync/clients/go/gen/metaparticle/sync/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Error is a call the sidecar refused or could not serve. status.Code(err)
// works on it.
type Error struct {
	Code    codes.Code
	Message string
	// Field names the request field at fault, for codes.InvalidArgument.
	Field string
}

func (e *Error) Error() string {
	return fmt.Sprintf("msync: %s: %s", e.Code, e.Message)
}

// The kinds of failure a caller may act on, for errors.Is:
//
//	if errors.Is(err, msync.ErrNotFree) { ... }
var (
	// ErrNotHeld: the token is not the lock's current one (FAILED_PRECONDITION),
	// for example a lease that ran out, or a term that ended.
	ErrNotHeld = errors.New("msync: not held")
	// ErrNotFree: TryLock found the lock held by someone else.
	ErrNotFree = errors.New("msync: held by someone else")
	// ErrUnavailable: the sidecar cannot be reached or cannot reach its store.
	ErrUnavailable = errors.New("msync: sidecar unavailable")
	// ErrInvalidArgument: the sidecar refused a request value; Error.Field names it.
	ErrInvalidArgument = errors.New("msync: invalid argument")
)

// Is reports the kind of failure, so errors.Is(err, ErrNotHeld) and the
// others work on an *Error.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotHeld:
		return e.Code == codes.FailedPrecondition
	case ErrUnavailable:
		return e.Code == codes.Unavailable
	case ErrInvalidArgument:
		return e.Code == codes.InvalidArgument
	}
	return false
}

// GRPCStatus lets status.FromError and status.Code see the code.
func (e *Error) GRPCStatus() *status.Status {
	return status.New(e.Code, e.Message)
}

// callError turns a failed call into an *Error carrying the `field` trailer,
// or into ctx's own error when the caller gave up.
func callError(ctx context.Context, err error, trailer metadata.MD) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Code: st.Code(), Message: st.Message()}
	if field := trailer.Get("field"); len(field) > 0 {
		e.Field = field[0]
	}
	return e
}

// LossReason says why a lock or a term of leadership ended.
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
	// ReasonReleased: this client released the lock or resigned.
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

// LostError says why a lock ended; Lock.Err returns it.
type LostError struct {
	Reason  LossReason
	Message string
}

func (e *LostError) Error() string {
	return fmt.Sprintf("msync: lock lost (%s): %s", e.Reason, e.Message)
}
