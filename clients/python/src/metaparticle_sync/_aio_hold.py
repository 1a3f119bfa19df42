"""What a lock, a semaphore's permit and a read-write hold share, with
grpc.aio: _hold.py for the asyncio client.

A hold taken on a stream (`AsyncSession`: an AsyncLock, an AsyncPermit, an
AsyncRWLock) lasts as long as the stream stays open; a task reads the
sidecar's heartbeats, and the client's own deadline runs on the event loop's
monotonic clock (DESIGN 3.11): if no heartbeat arrives before the last
`valid_for` runs out, the hold is reported lost by the client. A hold taken
for a lease (`AsyncLeaseHold`) is renewed by the caller, and `lost` is set
when its last `valid_for` runs out.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Awaitable, Callable, Protocol, TypeVar, cast

import grpc
import grpc.aio
from google.protobuf.duration_pb2 import Duration

from ._common import WAIT_GRACE, LostError, call_timeout, from_duration, loss_reason
from ._errors import DeadlineExceeded, LockTimeout, NotHeld, SyncError, from_rpc_error
from ._hold import HoldEvent

_Hold = TypeVar("_Hold", bound="AsyncSession")
_Leased = TypeVar("_Leased", bound="AsyncLeaseHold")


class _Renewal(Protocol):
    """A Renew or RenewPermit response."""

    @property
    def valid_for(self) -> Duration: ...


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


class AsyncSession:
    """A hold kept by an open stream: an AsyncLock or an AsyncPermit, whose
    docstrings say what `lost`, `error` and `held` mean. Subclasses give
    `release()`."""

    def __init__(
        self,
        what: str,
        token: int,
        valid_for: float,
        call: grpc.aio.UnaryStreamCall,  # type: ignore[type-arg]
        timeout: float,
    ) -> None:
        self.lost = asyncio.Event()
        self.error: LostError | None = None
        self._what = what
        self._ended = False
        self._call = call
        self._timeout = timeout
        self._deadline = _Deadline(
            lambda: self._end(LostError("heartbeat-timeout", f"no heartbeat from the sidecar before {what} (token {token}) stopped being valid"))
        )
        self._deadline.extend(valid_for)
        self._reader = asyncio.get_running_loop().create_task(self._follow())

    @property
    def held(self) -> bool:
        return not self._ended

    @property
    def valid_for(self) -> float:
        return 0.0 if self._ended else self._deadline.remaining()

    async def _give_back(self, send: Callable[[float], Awaitable[object]], timeout: float | None) -> None:
        """The release of the hold: `send(deadline)` asks the sidecar, and this
        returns once it answered (see AsyncLock.release)."""
        limit = call_timeout(timeout, self._timeout)
        promise = self._deadline.remaining()
        if not self._end(None):
            return
        try:
            await send(min(limit, promise))
        except grpc.aio.AioRpcError as error:
            failure = from_rpc_error(error)
            self._call.cancel()  # ending the stream gives the hold back too, once the sidecar reads it
            if isinstance(failure, NotHeld):
                return  # already gone: lost or expired
            if isinstance(failure, DeadlineExceeded) and promise <= limit:
                return  # the promise ran out first
            raise failure from None
        except BaseException:
            self._call.cancel()  # for example the caller's task was cancelled
            raise
        self._call.cancel()  # the sidecar ends it too

    async def release(self, *, timeout: float | None = None) -> None:
        raise NotImplementedError

    async def __aenter__(self: _Hold) -> _Hold:
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
                message = cast(HoldEvent, read)
                event = message.WhichOneof("event")
                if event == "renewed":
                    self._deadline.extend(from_duration(message.renewed.valid_for))
                elif event == "lost":
                    self._end(LostError(loss_reason(message.lost.reason), message.lost.message))
            self._end(LostError("stream-ended", f"the sidecar ended the stream of {self._what}"))
        except (grpc.aio.AioRpcError, asyncio.CancelledError) as error:
            self._end(LostError("stream-ended", f"the sidecar ended the stream of {self._what}: {error}"))

    def _end(self, loss: LostError | None) -> bool:
        """Ends the hold, as lost (`loss`, which cancels the stream) or being
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


async def open_session(
    call: grpc.aio.UnaryStreamCall,  # type: ignore[type-arg]
    wait: float,
    what: str,
) -> HoldEvent:
    """Waits for the first message of an Acquire or AcquirePermit stream and
    returns it (`acquired`; the caller knows its type). The wait is bounded by `wait`, which the sidecar
    was told, and by the client's own clock WAIT_GRACE later; either raises
    LockTimeout."""
    try:
        first = await asyncio.wait_for(call.read(), wait + WAIT_GRACE)
    except asyncio.TimeoutError:
        call.cancel()  # which gives back whatever the sidecar grants from now on
        raise LockTimeout(
            grpc.StatusCode.DEADLINE_EXCEEDED, f"{what} was not acquired within {wait:g} s: the sidecar did not answer in time"
        ) from None
    except grpc.aio.AioRpcError as error:
        raise from_rpc_error(error, waiting=True) from None
    except BaseException:
        call.cancel()
        raise
    if first is grpc.aio.EOF:
        raise SyncError(grpc.StatusCode.UNAVAILABLE, f"the sidecar ended the stream before {what} was acquired")
    message = cast(HoldEvent, first)
    if message.WhichOneof("event") != "acquired":
        call.cancel()
        raise SyncError(grpc.StatusCode.INTERNAL, f"the sidecar's first message for {what} was not `acquired`")
    return message


class AsyncLeaseHold:
    """A hold taken for a lease: an AsyncLease or an AsyncPermitLease. Held
    unless renewed; `lost` is set when the last `valid_for` runs out without
    a renewal."""

    def __init__(self, valid_for: float, timeout: float) -> None:
        self.lost = asyncio.Event()
        self._timeout = timeout
        self._deadline = _Deadline(self.lost.set)
        self._deadline.extend(valid_for)

    @property
    def valid_for(self) -> float:
        return self._deadline.remaining()

    async def _renew(self, send: Callable[[float], Awaitable[_Renewal]], timeout: float | None) -> float:
        """`send(deadline)` renews; returns the seconds the holder may now act."""
        try:
            response = await send(call_timeout(timeout, self._timeout))
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        valid_for = from_duration(response.valid_for)
        self._deadline.extend(valid_for)
        return valid_for

    async def _release(self, send: Callable[[float], Awaitable[object]], timeout: float | None) -> None:
        """`send(deadline)` gives the hold back; the deadline stops once it is answered."""
        try:
            await send(call_timeout(timeout, self._timeout))
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        self._deadline.stop()

    async def release(self, *, timeout: float | None = None) -> None:
        raise NotImplementedError

    async def __aenter__(self: _Leased) -> _Leased:
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
