"""Locks through the sidecar, with grpc.aio.

A lock is held for as long as its Acquire stream stays open; a task reads the
sidecar's heartbeats, and the client's own deadline runs on the event loop's
monotonic clock (DESIGN 3.1): if no heartbeat arrives before the last
`valid_for` runs out, the lock is reported lost by the client.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import cast

import grpc
import grpc.aio

from metaparticle.sync.v1 import lock_service_pb2, lock_service_pb2_grpc

from ._common import LostError, call_timeout, from_duration, loss_reason, to_duration
from ._errors import DeadlineExceeded, NotHeld, SyncError, from_rpc_error


class _Deadline:
    """Calls `on_expired` once unless `extend` keeps moving the deadline; a
    heartbeat that comes after the deadline does not revive anything."""

    def __init__(self, on_expired: object) -> None:
        self._on_expired = on_expired
        self._loop = asyncio.get_running_loop()
        self._deadline = self._loop.time()
        self._timer: asyncio.TimerHandle | None = None

    def extend(self, valid_for: float) -> None:
        now = self._loop.time()
        if self._timer is not None:
            if now >= self._deadline:
                return
            self._timer.cancel()
        self._deadline = now + valid_for
        self._timer = self._loop.call_at(self._deadline, self._fire)

    def _fire(self) -> None:
        self._on_expired()  # type: ignore[operator]

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def remaining(self) -> float:
        return max(0.0, self._deadline - self._loop.time())


class AsyncLock:
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
        self.lost = asyncio.Event()
        self.error: LostError | None = None
        self._ended = False
        self._call = call
        self._stub = stub
        self._timeout = timeout
        self._deadline = _Deadline(
            lambda: self._end(
                LostError("heartbeat-timeout", f"no heartbeat from the sidecar before lock {name} (token {self.token}) stopped being valid")
            )
        )
        self._deadline.extend(from_duration(acquired.valid_for))
        self._reader = asyncio.get_running_loop().create_task(self._follow())

    @property
    def held(self) -> bool:
        return not self._ended

    @property
    def valid_for(self) -> float:
        return 0.0 if self._ended else self._deadline.remaining()

    async def release(self, *, timeout: float | None = None) -> None:
        """Gives the lock back and returns once the sidecar has released it
        (its reply to Release). Safe to repeat. No answer within `timeout`
        (default: the client's, 10 s) raises DeadlineExceeded while the lock's
        promise still runs; once the promise (`valid_for`) ran out it returns,
        as the hold is over anyway."""
        limit = call_timeout(timeout, self._timeout)
        promise = self._deadline.remaining()
        if not self._end(None):
            return
        try:
            await self._stub.Release(
                lock_service_pb2.ReleaseRequest(name=self.name, fencing_token=self.token), timeout=min(limit, promise)
            )
        except grpc.aio.AioRpcError as error:
            failure = from_rpc_error(error)
            self._call.cancel()  # ending the stream releases the lock too, once the sidecar reads it
            if isinstance(failure, NotHeld):
                return  # already gone: lost or expired
            if isinstance(failure, DeadlineExceeded) and promise <= limit:
                return  # the promise ran out first
            raise failure from None
        except BaseException:
            self._call.cancel()  # for example the caller's task was cancelled
            raise
        self._call.cancel()  # the sidecar ends it too

    async def __aenter__(self) -> AsyncLock:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        try:
            await self.release()
        except SyncError:
            if kind is None:
                raise  # a failed release does not hide the exception leaving the block

    async def _follow(self) -> None:
        try:
            while True:
                read = await self._call.read()
                if read is grpc.aio.EOF:
                    break
                message = cast(lock_service_pb2.AcquireResponse, read)
                event = message.WhichOneof("event")
                if event == "renewed":
                    self._deadline.extend(from_duration(message.renewed.valid_for))
                elif event == "lost":
                    self._end(LostError(loss_reason(message.lost.reason), message.lost.message))
            self._end(LostError("stream-ended", f"the sidecar ended the stream of lock {self.name}"))
        except (grpc.aio.AioRpcError, asyncio.CancelledError) as error:
            self._end(LostError("stream-ended", f"the sidecar ended the stream of lock {self.name}: {error}"))

    def _end(self, loss: LostError | None) -> bool:
        """Ends the lock, as lost (`loss`, which cancels the stream) or being
        released (None); True if this call ended it."""
        if self._ended:
            return False
        self._ended = True
        self.error = loss
        self._deadline.stop()
        if loss is not None:
            self.lost.set()
            self._call.cancel()
        return True


class AsyncLease:
    """A lock taken with `try_lock`: held for its lease unless renewed. `lost`
    is set when the last `valid_for` runs out without a renewal."""

    def __init__(
        self, stub: lock_service_pb2_grpc.LockServiceAsyncStub, name: str, token: int, holder: str, valid_for: float, timeout: float
    ) -> None:
        self.name = name
        self.token = token
        self.holder = holder
        self.lost = asyncio.Event()
        self._stub = stub
        self._timeout = timeout
        self._deadline = _Deadline(self.lost.set)
        self._deadline.extend(valid_for)

    @property
    def valid_for(self) -> float:
        return self._deadline.remaining()

    async def renew(self, lease_duration: float | None = None, *, timeout: float | None = None) -> float:
        """Extends the lease; returns the seconds the holder may now act.
        NotHeld once it ran out and was taken; DeadlineExceeded after `timeout`."""
        request = lock_service_pb2.RenewRequest(name=self.name, fencing_token=self.token, lease_duration=to_duration(lease_duration))
        try:
            response = await self._stub.Renew(request, timeout=call_timeout(timeout, self._timeout))
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        valid_for = from_duration(response.valid_for)
        self._deadline.extend(valid_for)
        return valid_for

    async def release(self, *, timeout: float | None = None) -> None:
        """Gives the lock back; the next waiter gets it at once. NotHeld once
        it ran out and was taken; DeadlineExceeded after `timeout`."""
        try:
            await self._stub.Release(
                lock_service_pb2.ReleaseRequest(name=self.name, fencing_token=self.token), timeout=call_timeout(timeout, self._timeout)
            )
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        self._deadline.stop()

    async def __aenter__(self) -> AsyncLease:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if not self.lost.is_set():
            try:
                await self.release()
            except SyncError:
                if kind is None:
                    raise
