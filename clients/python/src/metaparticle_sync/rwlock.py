"""Read-write locks through the sidecar, with the blocking grpcio API.

A read-write lock of a name is held either shared (many readers at once) or
exclusive (one writer, nobody else); a waiting writer is not starved, as
readers that ask after it wait behind it. A hold is kept the two ways a lock
is, with the same deadlines and guarantees (see _hold.py): an RWLock, kept by
an open stream with the client's own heartbeat deadline, and an RWLease,
renewed by the caller. Each hold has a `hold_id`, by which it is renewed and
released: two shared holds may carry the same fencing token, never the same
hold id.

The request builders and the response readers below serve the asyncio client
(aio_rwlock.py) too; `RWLockCalls` is the part of `Client` that makes these
calls.
"""

from __future__ import annotations

from typing import Iterator, Literal

import grpc

from metaparticle.sync.v1 import rwlock_service_pb2, rwlock_service_pb2_grpc

from ._common import (
    ReaderSeat,
    RWLockInfo,
    call_timeout,
    consistency,
    default_name,
    from_duration,
    to_duration,
    wait_bound,
)
from ._errors import RWLockBusy, from_rpc_error
from ._hold import LeaseHold, Session, open_session

LockMode = Literal["shared", "exclusive"]
"""How a read-write lock is held: "shared" (a reader) or "exclusive" (a writer)."""

DEFAULT_MODE: LockMode = "exclusive"
"""The mode of a call that names none: the safe one, as the sidecar's."""

_MODES: dict[str, rwlock_service_pb2.LockMode.ValueType] = {
    "shared": rwlock_service_pb2.LOCK_MODE_SHARED,
    "exclusive": rwlock_service_pb2.LOCK_MODE_EXCLUSIVE,
}


class RWLockFields:
    """What a read-write hold says about itself, from the sidecar's
    RWLockAcquired: the attributes of RWLock, RWLease and their asyncio twins."""

    def _describe(self, name: str, acquired: rwlock_service_pb2.RWLockAcquired) -> None:
        self.name = name
        """The read-write lock's name."""
        self.hold_id = acquired.hold_id
        """Names this hold in the sidecar; `renew()` and `release()` use it,
        never the token, which shared holds may have in common."""
        self.mode: LockMode = "shared" if acquired.mode == rwlock_service_pb2.LOCK_MODE_SHARED else "exclusive"
        self.token: int = acquired.fencing_token
        """Fencing token. Exclusive: strictly greater than every earlier
        exclusive hold's. Shared: the last exclusive hold's before it (0 if
        none), so a resource fences writers and still accepts readers."""
        self.holder = acquired.holder
        self.lease_duration = from_duration(acquired.lease_duration)



def what(name: str, mode: str) -> str:
    """A hold, in messages: "a shared hold of read-write lock catalog"."""
    return f"a {mode} hold of read-write lock {name}"


class RWLock(Session, RWLockFields):
    """A held read-write lock, shared or exclusive (`mode`): a Lock with the
    same `lost`, `error`, `held`, `valid_for` and `with`."""

    def __init__(
        self,
        name: str,
        acquired: rwlock_service_pb2.RWLockAcquired,
        messages: Iterator[rwlock_service_pb2.AcquireRWLockResponse],
        stub: rwlock_service_pb2_grpc.RWLockServiceStub,
        timeout: float,
    ) -> None:
        self._describe(name, acquired)
        self._stub = stub
        super().__init__(what(name, self.mode), self.token, from_duration(acquired.valid_for), messages, timeout)

    def release(self, *, timeout: float | None = None) -> None:
        """Gives the hold back by its `hold_id` and returns once the sidecar
        has done so, so a waiter can have the lock from then on; bounded as
        Lock.release() is, by `timeout` (default the client's, 10 s) and by
        the hold's promise (`valid_for`). Safe to repeat."""
        request = release_request(self.name, self.hold_id)
        self._give_back(lambda deadline: self._stub.ReleaseRWLock(request, timeout=deadline), timeout)


class RWLease(LeaseHold, RWLockFields):
    """A read-write hold taken with `try_acquire_rwlock`: held for its lease
    unless renewed, and given back with `release()` (or by leaving `with`).
    `lost` is set when the last `valid_for` runs out without a renewal."""

    def __init__(
        self, stub: rwlock_service_pb2_grpc.RWLockServiceStub, name: str, hold: rwlock_service_pb2.RWLockAcquired, timeout: float
    ) -> None:
        self._describe(name, hold)
        self._stub = stub
        super().__init__(from_duration(hold.valid_for), timeout)

    def renew(self, lease_duration: float | None = None, *, timeout: float | None = None) -> float:
        """Extends the lease (by `lease_duration` whole seconds from now,
        default the current lease); returns the seconds the holder may now
        act. A hold the sidecar no longer has raises NotHeld; no answer
        within `timeout` (default 10 s) raises DeadlineExceeded."""
        request = renew_request(self.name, self.hold_id, lease_duration)
        return self._renew(lambda deadline: self._stub.RenewRWLock(request, timeout=deadline), timeout)

    def release(self, *, timeout: float | None = None) -> None:
        """Gives the hold back; a waiter gets the lock at once. A hold the
        sidecar no longer has (it ran out, or was released) raises NotHeld;
        no answer within `timeout` (default 10 s) raises DeadlineExceeded."""
        request = release_request(self.name, self.hold_id)
        self._release(lambda deadline: self._stub.ReleaseRWLock(request, timeout=deadline), timeout)


class RWLockCalls:
    """The read-write lock calls of `Client`, which gives it its stubs and
    its default deadline."""

    timeout: float
    rwlocks: rwlock_service_pb2_grpc.RWLockServiceStub
    _rwlock_streams: rwlock_service_pb2_grpc.RWLockServiceStub

    def acquire_rwlock(
        self,
        name: str,
        mode: LockMode = DEFAULT_MODE,
        *,
        holder: str | None = None,
        lease_duration: float | None = None,
        wait_timeout: float | None = None,
        timeout: float | None = None,
    ) -> RWLock:
        """Waits until the read-write lock `name` can be held in `mode`
        ("shared" or "exclusive", the default) and returns the hold:

            with client.acquire_rwlock("catalog", "shared", timeout=60) as hold:
                read_catalog(stop=hold.lost)

        The other arguments, the bounds of the wait and its LockTimeout are
        those of `lock()`: `lease_duration` (whole seconds) defaults to the
        sidecar's (15 s), the wait to the smaller of `wait_timeout` and
        `timeout`, else DEFAULT_WAIT_TIMEOUT (5 min). Another `mode` raises
        ValueError before anything is sent.
        """
        wait = wait_bound(wait_timeout, timeout)
        messages = self._rwlock_streams.AcquireRWLock(acquire_request(name, mode, holder, lease_duration, wait))
        first = open_session(messages, wait, what(name, mode))
        return RWLock(name, first.acquired, messages, self.rwlocks, self.timeout)

    def try_acquire_rwlock(
        self,
        name: str,
        mode: LockMode = DEFAULT_MODE,
        *,
        holder: str | None = None,
        lease_duration: float | None = None,
        timeout: float | None = None,
    ) -> RWLease:
        """One attempt without waiting: an RWLease held for `lease_duration`
        (whole seconds; default the sidecar's, 15 s) unless renewed. If the
        lock cannot be held in `mode` now it raises RWLockBusy, whose `state`
        says how it is held. No answer within `timeout` (default the
        client's, 10 s) raises DeadlineExceeded."""
        request = try_acquire_request(name, mode, holder, lease_duration)
        try:
            response = self.rwlocks.TryAcquireRWLock(request, timeout=call_timeout(timeout, self.timeout))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return RWLease(self.rwlocks, name, granted(name, response), self.timeout)

    def get_rwlock(self, name: str, *, fresh: bool = False, timeout: float | None = None) -> RWLockInfo:
        """Inspects a read-write lock; one never used is not held. `fresh`
        reads the store instead of the sidecar's cache; `timeout` defaults
        to the client's (10 s)."""
        try:
            response = self.rwlocks.GetRWLock(get_request(name, fresh), timeout=call_timeout(timeout, self.timeout))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return rwlock_info(response)


def _mode(mode: str) -> rwlock_service_pb2.LockMode.ValueType:
    try:
        return _MODES[mode]
    except KeyError:
        raise ValueError(f'mode must be "shared" or "exclusive", got {mode!r}') from None


def mode_name(mode: rwlock_service_pb2.LockMode.ValueType) -> Literal["shared", "exclusive", ""]:
    """A mode the sidecar reports: "" when the lock is not held."""
    if mode == rwlock_service_pb2.LOCK_MODE_SHARED:
        return "shared"
    return "exclusive" if mode == rwlock_service_pb2.LOCK_MODE_EXCLUSIVE else ""


def acquire_request(
    name: str, mode: str, holder: str | None, lease_duration: float | None, wait: float
) -> rwlock_service_pb2.AcquireRWLockRequest:
    return rwlock_service_pb2.AcquireRWLockRequest(
        name=name,
        mode=_mode(mode),
        holder=holder or default_name("MSYNC_HOLDER"),
        lease_duration=to_duration(lease_duration),
        wait_timeout=to_duration(wait),
    )


def try_acquire_request(
    name: str, mode: str, holder: str | None, lease_duration: float | None
) -> rwlock_service_pb2.TryAcquireRWLockRequest:
    return rwlock_service_pb2.TryAcquireRWLockRequest(
        name=name, mode=_mode(mode), holder=holder or default_name("MSYNC_HOLDER"), lease_duration=to_duration(lease_duration)
    )


def renew_request(name: str, hold_id: str, lease_duration: float | None) -> rwlock_service_pb2.RenewRWLockRequest:
    return rwlock_service_pb2.RenewRWLockRequest(name=name, hold_id=hold_id, lease_duration=to_duration(lease_duration))


def release_request(name: str, hold_id: str) -> rwlock_service_pb2.ReleaseRWLockRequest:
    return rwlock_service_pb2.ReleaseRWLockRequest(name=name, hold_id=hold_id)


def get_request(name: str, fresh: bool) -> rwlock_service_pb2.GetRWLockRequest:
    return rwlock_service_pb2.GetRWLockRequest(name=name, consistency=consistency(fresh))


def granted(name: str, response: rwlock_service_pb2.TryAcquireRWLockResponse) -> rwlock_service_pb2.RWLockAcquired:
    """The hold TryAcquireRWLock granted; RWLockBusy, with the lock's state, if it granted none."""
    if not response.acquired:
        raise RWLockBusy(name, rwlock_info(response.state))
    return response.hold


def rwlock_info(response: rwlock_service_pb2.GetRWLockResponse) -> RWLockInfo:
    return RWLockInfo(
        held=response.held,
        mode=mode_name(response.mode),
        holder=response.holder,
        holder_identity=response.holder_identity,
        token=response.fencing_token,
        remaining=from_duration(response.remaining),
        readers=tuple(
            ReaderSeat(seat.holder_identity, seat.holder, seat.readers, from_duration(seat.remaining)) for seat in response.readers
        ),
        waiting_daemons=tuple(response.waiting_daemons),
    )
