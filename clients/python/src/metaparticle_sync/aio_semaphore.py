"""Semaphores through the sidecar, with grpc.aio: semaphore.py for the
asyncio client, whose request builders and response readers it shares."""

from __future__ import annotations

import grpc.aio

from metaparticle.sync.v1 import semaphore_service_pb2, semaphore_service_pb2_grpc

from ._aio_hold import AsyncLeaseHold, AsyncSession
from ._common import from_duration
from .semaphore import PermitFields, release_request, renew_request


class AsyncPermit(AsyncSession, PermitFields):
    """A held permit of a semaphore: an AsyncLock for one of N, with the same
    `lost`, `error`, `held`, `valid_for` and `async with`."""

    def __init__(
        self,
        name: str,
        acquired: semaphore_service_pb2.PermitAcquired,
        call: grpc.aio.UnaryStreamCall,  # type: ignore[type-arg]
        stub: semaphore_service_pb2_grpc.SemaphoreServiceAsyncStub,
        timeout: float,
    ) -> None:
        self._describe(name, acquired)
        self._stub = stub
        super().__init__(f"a permit of semaphore {name}", self.token, from_duration(acquired.valid_for), call, timeout)

    async def release(self, *, timeout: float | None = None) -> None:
        """Gives the permit back by its hold and returns once the sidecar has
        done so; bounded as AsyncLock.release() is, by `timeout` (default the
        client's, 10 s) and by the permit's promise (`valid_for`). Safe to repeat."""
        request = release_request(self.name, self.hold_id)
        await self._give_back(lambda deadline: self._stub.ReleasePermit(request, timeout=deadline), timeout)


class AsyncPermitLease(AsyncLeaseHold, PermitFields):
    """A permit taken with `try_acquire_permit`: held for its lease unless
    renewed. `lost` is set when the last `valid_for` runs out without a renewal."""

    def __init__(
        self,
        stub: semaphore_service_pb2_grpc.SemaphoreServiceAsyncStub,
        name: str,
        hold: semaphore_service_pb2.PermitAcquired,
        timeout: float,
    ) -> None:
        self._describe(name, hold)
        self._stub = stub
        super().__init__(from_duration(hold.valid_for), timeout)

    async def renew(self, lease_duration: float | None = None, *, timeout: float | None = None) -> float:
        """Extends the lease; returns the seconds the holder may now act.
        NotHeld once the sidecar no longer has the hold; DeadlineExceeded after `timeout`."""
        request = renew_request(self.name, self.hold_id, lease_duration)
        return await self._renew(lambda deadline: self._stub.RenewPermit(request, timeout=deadline), timeout)

    async def release(self, *, timeout: float | None = None) -> None:
        """Gives the permit back; the next waiter gets it at once. NotHeld
        once the sidecar no longer has the hold; DeadlineExceeded after `timeout`."""
        request = release_request(self.name, self.hold_id)
        await self._release(lambda deadline: self._stub.ReleasePermit(request, timeout=deadline), timeout)
