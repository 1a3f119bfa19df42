"""Read-write locks through the sidecar, with grpc.aio: rwlock.py for the
asyncio client, whose request builders and response readers it shares.
`AsyncRWLockCalls` is the part of `AsyncClient` that makes these calls."""

from __future__ import annotations

from typing import cast

import grpc.aio

from metaparticle.sync.v1 import rwlock_service_pb2, rwlock_service_pb2_grpc

from . import rwlock
from ._aio_hold import AsyncLeaseHold, AsyncSession, open_session
from ._common import RWLockInfo, call_timeout, from_duration, wait_bound
from ._errors import from_rpc_error
from .rwlock import DEFAULT_MODE, LockMode, RWLockFields, release_request, renew_request


class AsyncRWLock(AsyncSession, RWLockFields):
    """A held read-write lock, shared or exclusive (`mode`): an AsyncLock with
    the same `lost`, `error`, `held`, `valid_for` and `async with`."""

    def __init__(
        self,
        name: str,
        acquired: rwlock_service_pb2.RWLockAcquired,
        call: grpc.aio.UnaryStreamCall,  # type: ignore[type-arg]
        stub: rwlock_service_pb2_grpc.RWLockServiceAsyncStub,
        timeout: float,
    ) -> None:
        self._describe(name, acquired)
        self._stub = stub
        super().__init__(rwlock.what(name, self.mode), self.token, from_duration(acquired.valid_for), call, timeout)

    async def release(self, *, timeout: float | None = None) -> None:
        """Gives the hold back by its `hold_id` and returns once the sidecar
        has done so; bounded as AsyncLock.release() is, by `timeout` (default
        the client's, 10 s) and by the hold's promise (`valid_for`). Safe to repeat."""
        request = release_request(self.name, self.hold_id)
        await self._give_back(lambda deadline: self._stub.ReleaseRWLock(request, timeout=deadline), timeout)


class AsyncRWLease(AsyncLeaseHold, RWLockFields):
    """A read-write hold taken with `try_acquire_rwlock`: held for its lease
    unless renewed. `lost` is set when the last `valid_for` runs out without a renewal."""

    def __init__(
        self,
        stub: rwlock_service_pb2_grpc.RWLockServiceAsyncStub,
        name: str,
        hold: rwlock_service_pb2.RWLockAcquired,
        timeout: float,
    ) -> None:
        self._describe(name, hold)
        self._stub = stub
        super().__init__(from_duration(hold.valid_for), timeout)

    async def renew(self, lease_duration: float | None = None, *, timeout: float | None = None) -> float:
        """Extends the lease; returns the seconds the holder may now act.
        NotHeld once the sidecar no longer has the hold; DeadlineExceeded after `timeout` (default 10 s)."""
        request = renew_request(self.name, self.hold_id, lease_duration)
        return await self._renew(lambda deadline: self._stub.RenewRWLock(request, timeout=deadline), timeout)

    async def release(self, *, timeout: float | None = None) -> None:
        """Gives the hold back; a waiter gets the lock at once. NotHeld once
        the sidecar no longer has the hold; DeadlineExceeded after `timeout` (default 10 s)."""
        request = release_request(self.name, self.hold_id)
        await self._release(lambda deadline: self._stub.ReleaseRWLock(request, timeout=deadline), timeout)


class AsyncRWLockCalls:
    """The read-write lock calls of `AsyncClient`: those of `Client`, awaited,
    with the same arguments, defaults and errors."""

    timeout: float
    rwlocks: rwlock_service_pb2_grpc.RWLockServiceAsyncStub
    _rwlock_streams: rwlock_service_pb2_grpc.RWLockServiceAsyncStub

    async def acquire_rwlock(
        self,
        name: str,
        mode: LockMode = DEFAULT_MODE,
        *,
        holder: str | None = None,
        lease_duration: float | None = None,
        wait_timeout: float | None = None,
        timeout: float | None = None,
    ) -> AsyncRWLock:
        """`Client.acquire_rwlock`, awaited (`mode` "exclusive" unless given;
        the wait DEFAULT_WAIT_TIMEOUT, 5 min, unless `wait_timeout` or `timeout`):

            async with await client.acquire_rwlock("catalog", "shared", timeout=60) as hold:
                await read_catalog(stop=hold.lost)
        """
        wait = wait_bound(wait_timeout, timeout)
        call = self._rwlock_streams.AcquireRWLock(rwlock.acquire_request(name, mode, holder, lease_duration, wait))
        first = cast(rwlock_service_pb2.AcquireRWLockResponse, await open_session(call, wait, rwlock.what(name, mode)))
        return AsyncRWLock(name, first.acquired, call, self.rwlocks, self.timeout)

    async def try_acquire_rwlock(
        self,
        name: str,
        mode: LockMode = DEFAULT_MODE,
        *,
        holder: str | None = None,
        lease_duration: float | None = None,
        timeout: float | None = None,
    ) -> AsyncRWLease:
        """One attempt without waiting: a hold kept for its lease unless
        renewed, or RWLockBusy (with the lock's `state`) if the lock cannot be
        held in `mode` now; DeadlineExceeded after `timeout` (default 10 s)."""
        request = rwlock.try_acquire_request(name, mode, holder, lease_duration)
        try:
            response = await self.rwlocks.TryAcquireRWLock(request, timeout=call_timeout(timeout, self.timeout))
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        return AsyncRWLease(self.rwlocks, name, rwlock.granted(name, response), self.timeout)

    async def get_rwlock(self, name: str, *, fresh: bool = False, timeout: float | None = None) -> RWLockInfo:
        """Inspects a read-write lock; one never used is not held."""
        try:
            response = await self.rwlocks.GetRWLock(rwlock.get_request(name, fresh), timeout=call_timeout(timeout, self.timeout))
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        return rwlock.rwlock_info(response)
