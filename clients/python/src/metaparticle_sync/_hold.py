"""What a lock, a semaphore's permit and a read-write hold share, with the
blocking grpcio API.

A hold taken on a stream (`Session`: a Lock, a Permit, an RWLock) lasts as
long as the stream stays open; a background thread reads the sidecar's
heartbeats, and a watchdog thread keeps the client's own deadline (DESIGN
3.11): a frozen or dead sidecar cannot say the hold was lost, so if no
heartbeat arrives before the last `valid_for` runs out on this process's
monotonic clock, the hold is reported lost by the client. A hold taken for a
lease (`LeaseHold`: a Lease, a PermitLease, an RWLease) is renewed by the
caller, and `lost` is set when its last `valid_for` runs out.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Callable, Iterator, Literal, Protocol, TypeVar, cast

import grpc
from google.protobuf.duration_pb2 import Duration

from metaparticle.sync.v1 import lock_service_pb2, types_pb2

from ._common import WAIT_GRACE, LostError, call_timeout, from_duration, loss_reason
from ._errors import DeadlineExceeded, LockTimeout, NotHeld, SyncError, from_rpc_error
from ._watchdog import Watchdog

class HoldEvent(Protocol):
    """A message of an Acquire, AcquirePermit or AcquireRWLock stream."""

    @property
    def renewed(self) -> types_pb2.Renewed: ...
    @property
    def lost(self) -> lock_service_pb2.Lost: ...
    def WhichOneof(self, oneof_group: Literal["event", b"event"]) -> Literal["acquired", "renewed", "lost"] | None: ...


_Event = TypeVar("_Event", bound=HoldEvent)
_Hold = TypeVar("_Hold", bound="Session")
_Leased = TypeVar("_Leased", bound="LeaseHold")


class _Renewal(Protocol):
    """A Renew or RenewPermit response."""

    @property
    def valid_for(self) -> Duration: ...


class Session:
    """A hold kept by an open stream: a Lock or a Permit, whose docstrings
    say what `lost`, `error` and `held` mean. Subclasses give `release()`."""

    def __init__(self, what: str, token: int, valid_for: float, messages: Iterator[HoldEvent], timeout: float) -> None:
        self.lost = threading.Event()
        self.error: LostError | None = None
        self._what = what
        self._token = token
        self._ended = False
        self._call = cast(grpc.Call, messages)  # the stream's call is also the iterator of its messages
        self._timeout = timeout
        self._guard = threading.Lock()
        self._watchdog = Watchdog(self._heartbeat_timeout)
        self._watchdog.start(valid_for)
        threading.Thread(target=self._follow, args=(messages,), name=f"msync-{what.replace(' ', '-')}", daemon=True).start()

    @property
    def valid_for(self) -> float:
        """Seconds the holder may still act without another heartbeat."""
        return self._watchdog.remaining()

    @property
    def held(self) -> bool:
        """True until the hold is released or lost."""
        with self._guard:
            return not self._ended

    def _give_back(self, send: Callable[[float], object], timeout: float | None) -> None:
        """The release of the hold: `send(deadline)` asks the sidecar, and this
        returns once it answered (see Lock.release)."""
        limit = call_timeout(timeout, self._timeout)
        promise = self._watchdog.remaining()
        if not self._end(None):
            return
        try:
            send(min(limit, promise))
        except grpc.RpcError as error:
            failure = from_rpc_error(error)
            # Ending the stream gives the hold back too, once the sidecar reads it.
            self._call.cancel()
            if isinstance(failure, NotHeld):
                return  # already gone: lost or expired, and the sidecar says so
            if isinstance(failure, DeadlineExceeded) and promise <= limit:
                return  # the promise ran out first
            raise failure from None
        self._call.cancel()  # the sidecar ends it too

    def release(self, *, timeout: float | None = None) -> None:
        raise NotImplementedError

    def __enter__(self: _Hold) -> _Hold:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        release_on_exit(self.release, kind)

    def _follow(self, messages: Iterator[HoldEvent]) -> None:
        try:
            for message in messages:
                event = message.WhichOneof("event")
                if event == "renewed":
                    self._watchdog.extend(from_duration(message.renewed.valid_for))
                elif event == "lost":
                    self._end(LostError(loss_reason(message.lost.reason), message.lost.message))
            self._end(LostError("stream-ended", f"the sidecar ended the stream of {self._what}"))
        except grpc.RpcError as error:
            # Nothing changes if the hold already ended, which cancelled the stream.
            self._end(LostError("stream-ended", f"the sidecar ended the stream of {self._what}: {error}"))

    def _heartbeat_timeout(self) -> None:
        self._end(
            LostError("heartbeat-timeout", f"no heartbeat from the sidecar before {self._what} (token {self._token}) stopped being valid")
        )

    def _end(self, loss: LostError | None) -> bool:
        """Ends the hold, as lost (`loss`) or being released (None); True if this call ended it.

        A loss cancels the stream at once (which gives the hold back in the
        sidecar); a release first asks the sidecar, and a `lost` that comes
        meanwhile is not reported.
        """
        with self._guard:
            if self._ended:
                return False
            self._ended = True
            self.error = loss
            self._watchdog.stop()
        if loss is not None:
            self.lost.set()
            self._call.cancel()
        return True


def open_session(messages: Iterator[_Event], wait: float, what: str) -> _Event:
    """Waits for the first message of an Acquire or AcquirePermit stream,
    `messages` (also its call), and returns it: `acquired`. The wait is
    bounded by `wait`, which the sidecar was told, and by the client's own
    clock WAIT_GRACE later; either raises LockTimeout."""
    call = cast(grpc.Call, messages)
    clock = _WaitClock(wait + WAIT_GRACE, call.cancel)
    timed_out = LockTimeout(
        grpc.StatusCode.DEADLINE_EXCEEDED, f"{what} was not acquired within {wait:g} s: the sidecar did not answer in time"
    )
    try:
        first = next(messages)
    except grpc.RpcError as error:
        if not clock.settle():
            raise timed_out from None
        raise from_rpc_error(error, waiting=True) from None
    except StopIteration:
        clock.settle()
        raise SyncError(grpc.StatusCode.UNAVAILABLE, f"the sidecar ended the stream before {what} was acquired") from None
    except BaseException:
        clock.settle()
        call.cancel()  # for example KeyboardInterrupt while waiting
        raise
    if not clock.settle():
        raise timed_out  # the stream is cancelled, which gives back what it got just then
    if first.WhichOneof("event") != "acquired":
        call.cancel()
        raise SyncError(grpc.StatusCode.INTERNAL, f"the sidecar's first message for {what} was not `acquired`")
    return first


class LeaseHold:
    """A hold taken for a lease: a Lease or a PermitLease. Held unless
    renewed, and given back with `release()` (or by leaving `with`). `lost`
    is set when the last `valid_for` runs out without a renewal."""

    def __init__(self, valid_for: float, timeout: float) -> None:
        self.lost = threading.Event()
        self._timeout = timeout
        self._watchdog = Watchdog(self.lost.set)
        self._watchdog.start(valid_for)

    @property
    def valid_for(self) -> float:
        return self._watchdog.remaining()

    def _renew(self, send: Callable[[float], _Renewal], timeout: float | None) -> float:
        """`send(deadline)` renews; returns the seconds the holder may now act."""
        try:
            response = send(call_timeout(timeout, self._timeout))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        valid_for = from_duration(response.valid_for)
        self._watchdog.extend(valid_for)
        return valid_for

    def _release(self, send: Callable[[float], object], timeout: float | None) -> None:
        """`send(deadline)` gives the hold back; the watchdog stops once it is answered."""
        try:
            send(call_timeout(timeout, self._timeout))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        self._watchdog.stop()

    def release(self, *, timeout: float | None = None) -> None:
        raise NotImplementedError

    def __enter__(self: _Leased) -> _Leased:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if not self.lost.is_set():
            release_on_exit(self.release, kind)


def release_on_exit(release: Callable[[], None], kind: type[BaseException] | None) -> None:
    """Releases on leaving `with`; a failed release does not hide the
    exception that is leaving the block (it is raised only on a clean exit)."""
    try:
        release()
    except SyncError:
        if kind is None:
            raise


class _WaitClock:
    """A blocking acquire's wait timeout on the client's own clock: calls
    `on_expired` (which cancels the wait) unless `settle` comes first."""

    def __init__(self, seconds: float, on_expired: Callable[[], object]) -> None:
        self._guard = threading.Lock()
        self._settled = False
        self._expired = False
        self._on_expired = on_expired
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._guard:
            if self._settled:
                return
            self._expired = True
        self._on_expired()

    def settle(self) -> bool:
        """Stops the clock; False if it had already run out."""
        self._timer.cancel()
        with self._guard:
            self._settled = True
            return not self._expired
