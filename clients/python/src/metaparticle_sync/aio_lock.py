"""Locks through the sidecar, with grpc.aio.

A lock is held for as long as its Acquire stream stays open; a task reads the
sidecar's heartbeats, and the client's own deadline runs on the event loop's
monotonic clock (DESIGN 3.11): if no heartbeat arrives before the last
`valid_for` runs out, the lock is reported lost by the client. _aio_hold.py
has that machinery, which a semaphore's permits share.
"""

from __future__ import annotations

import grpc.aio

from metaparticle.sync.v1 import lock_service_pb2, lock_service_pb2_grpc

from ._aio_hold import AsyncLeaseHold, AsyncSession
from ._common import from_duration, to_duration


class AsyncLock(AsyncSession):
    """A held lock. Use it with `async with`, which releases it on exit.

    `lost` is set the moment the holder must stop acting because the lock was
    lost: the sidecar said so, or its heartbeats stopped; `error` says why. A
    normal `release()` is not a loss and sets neither; `held` turns False on either.
    """

    def __init__(
        self,
        name: str,
        acquired: lock_service_pb2.Acquired,
        call: grpc.aio.UnaryStreamCall,  # type: ignore[type-arg]
        stub: lock_service_pb2_grpc.LockServiceAsyncStub,
        timeout: float,
    ) -> None:
        self.name = name
        self.token: int = acquired.fencing_token
        """Fencing token: strictly greater than every earlier token of this lock."""
        self.holder = acquired.holder
        self.lease_duration = from_duration(acquired.lease_duration)
        self._stub = stub
        super().__init__(f"lock {name}", self.token, from_duration(acquired.valid_for), call, timeout)

    async def release(self, *, timeout: float | None = None) -> None:
        """Gives the lock back and returns once the sidecar has released it
        (its reply to Release). Safe to repeat. No answer within `timeout`
        (default: the client's, 10 s) raises DeadlineExceeded while the lock's
        promise still runs; once the promise (`valid_for`) ran out it returns,
        as the hold is over anyway."""
        request = lock_service_pb2.ReleaseRequest(name=self.name, fencing_token=self.token)
        await self._give_back(lambda deadline: self._stub.Release(request, timeout=deadline), timeout)


class AsyncLease(AsyncLeaseHold):
    """A lock taken with `try_lock`: held for its lease unless renewed. `lost`
    is set when the last `valid_for` runs out without a renewal."""

    def __init__(
        self, stub: lock_service_pb2_grpc.LockServiceAsyncStub, name: str, token: int, holder: str, valid_for: float, timeout: float
    ) -> None:
        self.name = name
        self.token = token
        self.holder = holder
        self._stub = stub
        super().__init__(valid_for, timeout)

    async def renew(self, lease_duration: float | None = None, *, timeout: float | None = None) -> float:
        """Extends the lease; returns the seconds the holder may now act.
        NotHeld once it ran out and was taken; DeadlineExceeded after `timeout`."""
        request = lock_service_pb2.RenewRequest(name=self.name, fencing_token=self.token, lease_duration=to_duration(lease_duration))
        return await self._renew(lambda deadline: self._stub.Renew(request, timeout=deadline), timeout)

    async def release(self, *, timeout: float | None = None) -> None:
        """Gives the lock back; the next waiter gets it at once. NotHeld once
        it ran out and was taken; DeadlineExceeded after `timeout`."""
        request = lock_service_pb2.ReleaseRequest(name=self.name, fencing_token=self.token)
        await self._release(lambda deadline: self._stub.Release(request, timeout=deadline), timeout)
