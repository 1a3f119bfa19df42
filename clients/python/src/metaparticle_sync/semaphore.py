"""Semaphores through the sidecar, with the blocking grpcio API.

A semaphore grants up to N holds of a name at once ("at most 3 replicas run
the export"). N is fixed by the first caller of a name: every call names it,
and a caller asking with another N gets PermitsMismatch. A permit is held the
two ways a lock is, with the same deadlines and guarantees (see _hold.py): a
Permit, kept by an open stream with the client's own heartbeat deadline, and
a PermitLease, renewed by the caller. Each hold has its own fencing token and
a `hold_id`, by which it is renewed and released.

The request builders and the response readers below serve the asyncio client
(aio_semaphore.py) too.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from metaparticle.sync.v1 import semaphore_service_pb2, semaphore_service_pb2_grpc

from ._common import PermitHolder, SemaphoreInfo, consistency, default_name, from_duration, to_duration
from ._errors import NoPermitFree
from ._hold import LeaseHold, Session

_INT32 = 2**31 - 1


class PermitFields:
    """What a held permit says about itself, from the sidecar's PermitAcquired:
    the attributes of Permit, PermitLease and their asyncio twins."""

    def _describe(self, name: str, acquired: semaphore_service_pb2.PermitAcquired) -> None:
        self.name = name
        """The semaphore's name."""
        self.hold_id = acquired.hold_id
        """Names this hold in the sidecar; `renew()` and `release()` use it."""
        self.token: int = acquired.fencing_token
        """Fencing token: strictly greater than every earlier token of this semaphore."""
        self.holder = acquired.holder
        self.lease_duration = from_duration(acquired.lease_duration)
        self.permits = acquired.permits
        """The semaphore's N."""


class Permit(Session, PermitFields):
    """A held permit of a semaphore: a Lock for one of N, with the same
    `lost`, `error`, `held`, `valid_for` and `with`."""

    def __init__(
        self,
        name: str,
        acquired: semaphore_service_pb2.PermitAcquired,
        messages: Iterator[semaphore_service_pb2.AcquirePermitResponse],
        stub: semaphore_service_pb2_grpc.SemaphoreServiceStub,
        timeout: float,
    ) -> None:
        self._describe(name, acquired)
        self._stub = stub
        super().__init__(f"a permit of semaphore {name}", self.token, from_duration(acquired.valid_for), messages, timeout)

    def release(self, *, timeout: float | None = None) -> None:
        """Gives the permit back by its hold and returns once the sidecar has
        done so, so the next waiter can have it from then on; bounded as
        Lock.release() is, by `timeout` (default the client's, 10 s) and by
        the permit's promise (`valid_for`). Safe to repeat."""
        request = release_request(self.name, self.hold_id)
        self._give_back(lambda deadline: self._stub.ReleasePermit(request, timeout=deadline), timeout)


class PermitLease(LeaseHold, PermitFields):
    """A permit taken with `try_acquire_permit`: held for its lease unless
    renewed, and given back with `release()` (or by leaving `with`). `lost`
    is set when the last `valid_for` runs out without a renewal."""

    def __init__(
        self, stub: semaphore_service_pb2_grpc.SemaphoreServiceStub, name: str, hold: semaphore_service_pb2.PermitAcquired, timeout: float
    ) -> None:
        self._describe(name, hold)
        self._stub = stub
        super().__init__(from_duration(hold.valid_for), timeout)

    def renew(self, lease_duration: float | None = None, *, timeout: float | None = None) -> float:
        """Extends the lease; returns the seconds the holder may now act. A
        hold the sidecar no longer has (it ran out) raises NotHeld; no answer
        within `timeout` (default 10 s) raises DeadlineExceeded."""
        request = renew_request(self.name, self.hold_id, lease_duration)
        return self._renew(lambda deadline: self._stub.RenewPermit(request, timeout=deadline), timeout)

    def release(self, *, timeout: float | None = None) -> None:
        """Gives the permit back; the next waiter gets it at once. A hold the
        sidecar no longer has (it ran out, or was released) raises NotHeld;
        no answer within `timeout` (default 10 s) raises DeadlineExceeded."""
        request = release_request(self.name, self.hold_id)
        self._release(lambda deadline: self._stub.ReleasePermit(request, timeout=deadline), timeout)


def _permits(permits: int) -> int:
    """N for a request. Out of int32's range it is clamped, not refused here,
    so that the sidecar refuses it as it refuses every bad N (INVALID_ARGUMENT
    naming `permits`)."""
    return max(-_INT32 - 1, min(permits, _INT32))


def acquire_request(
    name: str, permits: int, holder: str | None, lease_duration: float | None, wait: float
) -> semaphore_service_pb2.AcquirePermitRequest:
    return semaphore_service_pb2.AcquirePermitRequest(
        name=name,
        permits=_permits(permits),
        holder=holder or default_name("MSYNC_HOLDER"),
        lease_duration=to_duration(lease_duration),
        wait_timeout=to_duration(wait),
    )


def try_acquire_request(
    name: str, permits: int, holder: str | None, lease_duration: float | None
) -> semaphore_service_pb2.TryAcquirePermitRequest:
    return semaphore_service_pb2.TryAcquirePermitRequest(
        name=name, permits=_permits(permits), holder=holder or default_name("MSYNC_HOLDER"), lease_duration=to_duration(lease_duration)
    )


def renew_request(name: str, hold_id: str, lease_duration: float | None) -> semaphore_service_pb2.RenewPermitRequest:
    return semaphore_service_pb2.RenewPermitRequest(name=name, hold_id=hold_id, lease_duration=to_duration(lease_duration))


def release_request(name: str, hold_id: str) -> semaphore_service_pb2.ReleasePermitRequest:
    return semaphore_service_pb2.ReleasePermitRequest(name=name, hold_id=hold_id)


def get_request(name: str, fresh: bool) -> semaphore_service_pb2.GetSemaphoreRequest:
    return semaphore_service_pb2.GetSemaphoreRequest(name=name, consistency=consistency(fresh))


def granted(name: str, response: semaphore_service_pb2.TryAcquirePermitResponse) -> semaphore_service_pb2.PermitAcquired:
    """The hold TryAcquirePermit granted; NoPermitFree, with the holders, if it granted none."""
    if not response.acquired:
        raise NoPermitFree(name, holders(response.holders))
    return response.hold


def semaphore_info(response: semaphore_service_pb2.GetSemaphoreResponse) -> SemaphoreInfo:
    return SemaphoreInfo(response.permits, holders(response.holders), response.fencing_token, tuple(response.waiting_daemons))


def holders(holds: Iterable[semaphore_service_pb2.PermitHolder]) -> tuple[PermitHolder, ...]:
    return tuple(
        PermitHolder(h.holder, h.holder_identity, h.fencing_token, from_duration(h.lease_duration), from_duration(h.remaining)) for h in holds
    )
