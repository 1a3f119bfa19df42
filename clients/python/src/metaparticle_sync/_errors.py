"""The client's exceptions, and the one table from gRPC statuses to them.

A caller catches these without importing grpc: `SyncError` is the base, and
each subclass means one thing. The sidecar's standard error details
(`grpc-status-details-bin`: google.rpc.BadRequest and google.rpc.ErrorInfo)
are read with grpcio-status, never parsed by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import grpc
import google.rpc.error_details_pb2 as error_details_pb2
import google.rpc.status_pb2 as status_pb2
from grpc_status import rpc_status

if TYPE_CHECKING:
    from ._common import PermitHolder, RWLockInfo

ERROR_DOMAIN = "sync.metaparticle.io"
"""The ErrorInfo domain of the sidecar's errors."""


class SyncError(Exception):
    """A call the sidecar refused or could not serve, or that ran out of time.

    `code` is the gRPC status code (a `grpc.StatusCode`; compare its `.name`
    to avoid importing grpc), `details` the sidecar's message, `field` the
    request field at fault for INVALID_ARGUMENT (from google.rpc.BadRequest),
    and `reason` the sidecar's ErrorInfo reason (e.g. "NOT_HELD",
    "WAIT_TIMEOUT", "PERMITS_MISMATCH"), or None.
    """

    def __init__(self, code: grpc.StatusCode, details: str, field: str | None = None, reason: str | None = None) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.field = field
        self.reason = reason


class LockTimeout(SyncError, TimeoutError):
    """`lock()` did not get the lock (or `acquire_permit()` a permit) within
    its wait timeout (DEADLINE_EXCEEDED), whether the sidecar said so or the
    client's own clock did."""


class DeadlineExceeded(SyncError, TimeoutError):
    """A call did not finish within its deadline (`timeout=`), for example
    because the sidecar stopped answering (DEADLINE_EXCEEDED)."""


class NotHeld(SyncError):
    """The lock, permit or leadership the call names is not held by the
    caller (any more), or is held through another sidecar (FAILED_PRECONDITION)."""


class PermitsMismatch(SyncError):
    """A semaphore call named another number of permits than the semaphore
    has (FAILED_PRECONDITION, reason PERMITS_MISMATCH; `field` is "permits").
    Nothing was held."""


class InvalidArgument(SyncError):
    """The sidecar refused a request field; `field` names it (INVALID_ARGUMENT)."""


class Unavailable(SyncError):
    """The sidecar cannot be reached, is shutting down, or cannot reach its
    store (UNAVAILABLE)."""


class NoPermitFree(Exception):
    """`try_acquire_permit()` found every permit of the semaphore held.
    `holders` lists the holds (PermitHolder); one through another sidecar
    has token 0, as the sidecars record only how many permits each holds.
    Not a SyncError: the call itself succeeded."""

    def __init__(self, name: str, holders: tuple[PermitHolder, ...]) -> None:
        super().__init__(f"no permit of semaphore {name} is free; held by {', '.join(h.holder for h in holders)}")
        self.name = name
        self.holders = holders


class RWLockBusy(Exception):
    """`try_acquire_rwlock()` could not hold the read-write lock in the mode
    asked: a writer holds it, readers do (for an exclusive attempt), or a
    writer waits ahead (for a shared one). `state` (RWLockInfo) is the lock
    as the sidecar saw it then. Not a SyncError: the call itself succeeded."""

    def __init__(self, name: str, state: RWLockInfo) -> None:
        held = f"held {state.mode}" if state.mode else "not free in this mode"
        super().__init__(f"read-write lock {name} is {held}")
        self.name = name
        self.state = state


_CLASSES: dict[grpc.StatusCode, type[SyncError]] = {
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.FAILED_PRECONDITION: NotHeld,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
}


_BY_REASON: dict[str, type[SyncError]] = {
    "WAIT_TIMEOUT": LockTimeout,
    "PERMITS_MISMATCH": PermitsMismatch,
}


def error_for(code: grpc.StatusCode, details: str, field: str | None = None, reason: str | None = None) -> SyncError:
    """The SyncError subclass for `code`, or for the sidecar's reason where
    one has its own: WAIT_TIMEOUT is a LockTimeout, PERMITS_MISMATCH a
    PermitsMismatch."""
    kind = _BY_REASON.get(reason or "") or _CLASSES.get(code, SyncError)
    return kind(code, details, field, reason)


def shutting_down(details: str) -> Unavailable:
    """The error a campaign ends with when the sidecar deposed it because it
    is shutting down, as the sidecar ends its streams then."""
    return Unavailable(grpc.StatusCode.UNAVAILABLE, details or "the sidecar is shutting down", None, "SHUTTING_DOWN")


def from_rpc_error(error: grpc.RpcError, *, waiting: bool = False) -> SyncError:
    """A failed call (blocking or asyncio) as a SyncError, with the sidecar's
    error details. `waiting`: the call was a lock's wait, so a
    DEADLINE_EXCEEDED is its wait timeout (LockTimeout)."""
    # grpc.RpcError raised by a call is also a grpc.Call (AioRpcError has the
    # same three methods); typeshed does not say so.
    call = cast(grpc.Call, error)
    code = call.code()
    details = call.details() or ""
    field, reason = _details_of(call)
    if waiting and code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return LockTimeout(code, details, field, reason)
    return error_for(code, details, field, reason)


def _details_of(call: grpc.Call) -> tuple[str | None, str | None]:
    """The BadRequest field and the ErrorInfo reason of a failed call, if it carries them."""
    try:
        status = cast(status_pb2.Status | None, rpc_status.from_call(call))
    except ValueError:  # a status whose details contradict its code: ignore the details
        return None, None
    if status is None:
        return None, None
    field: str | None = None
    reason: str | None = None
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(bad):  # False for a detail of another type
            if bad.field_violations and field is None:
                field = bad.field_violations[0].field
        elif detail.Unpack(info):
            if info.domain == ERROR_DOMAIN and reason is None:
                reason = info.reason
    return field, reason
