"""Locks through the sidecar, with the blocking grpcio API.

A lock is held for as long as its Acquire stream stays open; a background
thread reads the sidecar's heartbeats, and a watchdog thread keeps the
client's own deadline (DESIGN 3.1): a frozen or dead sidecar cannot say the
lock was lost, so if no heartbeat arrives before the last `valid_for` runs out
on this process's monotonic clock, the lock is reported lost by the client.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Callable, Iterator

import grpc

from metaparticle.sync.v1 import election_service_pb2, election_service_pb2_grpc, lock_service_pb2, lock_service_pb2_grpc

from ._common import (
    DEFAULT_CALL_TIMEOUT,
    STREAM_CHANNEL_OPTIONS,
    WAIT_GRACE,
    Leader,
    LockInfo,
    LostError,
    address_or_default,
    call_timeout,
    consistency,
    default_name,
    from_duration,
    loss_reason,
    to_duration,
    wait_bound,
)
from ._errors import DeadlineExceeded, LockTimeout, NotHeld, SyncError, from_rpc_error
from ._watchdog import Watchdog
from .campaign import Campaign


class Lock:
    """A held lock. Use it as a context manager, which releases it on exit.

    `lost` is set the moment the holder must stop acting because the lock
    was lost: the sidecar said so, or its heartbeats stopped; `error` then
    says why. A normal `release()` is not a loss and sets neither; `held`
    turns False on either.
    """

    def __init__(
        self,
        name: str,
        acquired: lock_service_pb2.Acquired,
        call: grpc.Call,
        messages: Iterator[lock_service_pb2.AcquireResponse],
        stub: lock_service_pb2_grpc.LockServiceStub,
        timeout: float,
    ) -> None:
        self.name = name
        self.token: int = acquired.fencing_token
        """Fencing token: strictly greater than every earlier token of this lock."""
        self.holder = acquired.holder
        self.lease_duration = from_duration(acquired.lease_duration)
        self.lost = threading.Event()
        self.error: LostError | None = None
        self._ended = False
        self._stub = stub
        self._call = call
        self._timeout = timeout
        self._guard = threading.Lock()
        self._watchdog = Watchdog(self._heartbeat_timeout)
        self._watchdog.start(from_duration(acquired.valid_for))
        threading.Thread(target=self._follow, args=(messages,), name=f"msync-lock-{name}", daemon=True).start()

    @property
    def valid_for(self) -> float:
        """Seconds the holder may still act without another heartbeat."""
        return self._watchdog.remaining()

    @property
    def held(self) -> bool:
        """True until the lock is released or lost."""
        with self._guard:
            return not self._ended

    def release(self, *, timeout: float | None = None) -> None:
        """Gives the lock back and returns once the sidecar has released it
        (its reply to Release), so the next waiter can have it from then on.

        Safe to repeat; a lock already lost or released returns at once. If
        the sidecar does not answer within `timeout` (default: the client's,
        10 s) it raises DeadlineExceeded, and the sidecar releases the lock
        when it can; if instead the lock's promise (`valid_for`) runs out
        first, it returns, as the hold is over anyway.
        """
        limit = call_timeout(timeout, self._timeout)
        promise = self._watchdog.remaining()
        if not self._end(None):
            return
        try:
            self._stub.Release(lock_service_pb2.ReleaseRequest(name=self.name, fencing_token=self.token), timeout=min(limit, promise))
        except grpc.RpcError as error:
            failure = from_rpc_error(error)
            # Ending the stream releases the lock too, once the sidecar reads it.
            self._call.cancel()
            if isinstance(failure, NotHeld):
                return  # already gone: lost or expired, and the sidecar says so
            if isinstance(failure, DeadlineExceeded) and promise <= limit:
                return  # the promise ran out first
            raise failure from None
        self._call.cancel()  # the sidecar ends it too

    def __enter__(self) -> Lock:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        _release_on_exit(self.release, kind)

    def _follow(self, messages: Iterator[lock_service_pb2.AcquireResponse]) -> None:
        try:
            for message in messages:
                event = message.WhichOneof("event")
                if event == "renewed":
                    self._watchdog.extend(from_duration(message.renewed.valid_for))
                elif event == "lost":
                    self._end(LostError(loss_reason(message.lost.reason), message.lost.message))
            self._end(LostError("stream-ended", f"the sidecar ended the stream of lock {self.name}"))
        except grpc.RpcError as error:
            # Nothing changes if the lock already ended, which cancelled the stream.
            self._end(LostError("stream-ended", f"the sidecar ended the stream of lock {self.name}: {error}"))

    def _heartbeat_timeout(self) -> None:
        self._end(
            LostError("heartbeat-timeout", f"no heartbeat from the sidecar before lock {self.name} (token {self.token}) stopped being valid")
        )

    def _end(self, loss: LostError | None) -> bool:
        """Ends the lock, as lost (`loss`) or being released (None); True if this call ended it.

        A loss cancels the stream at once (which releases the lock in the
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


class Lease:
    """A lock taken with `try_lock`: held for its lease unless renewed, and
    given back with `release()` (or by leaving `with`). `lost` is set when
    the last `valid_for` runs out without a renewal."""

    def __init__(
        self, stub: lock_service_pb2_grpc.LockServiceStub, name: str, token: int, holder: str, valid_for: float, timeout: float
    ) -> None:
        self.name = name
        self.token = token
        self.holder = holder
        self.lost = threading.Event()
        self._stub = stub
        self._timeout = timeout
        self._watchdog = Watchdog(self.lost.set)
        self._watchdog.start(valid_for)

    @property
    def valid_for(self) -> float:
        return self._watchdog.remaining()

    def renew(self, lease_duration: float | None = None, *, timeout: float | None = None) -> float:
        """Extends the lease; returns the seconds the holder may now act.
        A lease that ran out and was taken raises NotHeld; no answer within
        `timeout` (default 10 s) raises DeadlineExceeded."""
        request = lock_service_pb2.RenewRequest(name=self.name, fencing_token=self.token, lease_duration=to_duration(lease_duration))
        try:
            response = self._stub.Renew(request, timeout=call_timeout(timeout, self._timeout))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        valid_for = from_duration(response.valid_for)
        self._watchdog.extend(valid_for)
        return valid_for

    def release(self, *, timeout: float | None = None) -> None:
        """Gives the lock back; the next waiter gets it at once. A lease
        that ran out and was taken raises NotHeld; no answer within `timeout`
        (default 10 s) raises DeadlineExceeded, and the lease then ends on
        its own when it runs out."""
        try:
            self._stub.Release(
                lock_service_pb2.ReleaseRequest(name=self.name, fencing_token=self.token), timeout=call_timeout(timeout, self._timeout)
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        self._watchdog.stop()

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if not self.lost.is_set():
            _release_on_exit(self.release, kind)


def _release_on_exit(release: Callable[[], None], kind: type[BaseException] | None) -> None:
    """Releases on leaving `with`; a failed release does not hide the
    exception that is leaving the block (it is raised only on a clean exit)."""
    try:
        release()
    except SyncError:
        if kind is None:
            raise


class _WaitClock:
    """The lock's wait timeout on the client's own clock: calls `on_expired`
    (which cancels the wait) unless `settle` comes first."""

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


class Client:
    """A blocking client of one sidecar, for locks and elections; safe to share between threads.

    The address defaults to $MSYNC_ADDRESS, else 127.0.0.1:13131. `timeout`
    is the deadline, in seconds, of each call that does not name its own
    (default DEFAULT_CALL_TIMEOUT, 10 s). Closing the client ends every lock
    and campaign it holds.
    """

    def __init__(self, address: str | None = None, *, timeout: float = DEFAULT_CALL_TIMEOUT) -> None:
        self.address = address_or_default(address)
        self.timeout = call_timeout(timeout, DEFAULT_CALL_TIMEOUT)
        # Two connections: one for the calls, each bounded by its deadline,
        # and one with keepalive for the streams (see STREAM_CHANNEL_OPTIONS).
        self._channel = grpc.insecure_channel(self.address)
        self._streams = grpc.insecure_channel(self.address, options=STREAM_CHANNEL_OPTIONS)
        self.locks = lock_service_pb2_grpc.LockServiceStub(self._channel)
        self.elections = election_service_pb2_grpc.ElectionServiceStub(self._channel)
        self._lock_streams = lock_service_pb2_grpc.LockServiceStub(self._streams)
        self._election_streams = election_service_pb2_grpc.ElectionServiceStub(self._streams)

    def lock(
        self,
        name: str,
        *,
        holder: str | None = None,
        lease_duration: float | None = None,
        wait_timeout: float | None = None,
        timeout: float | None = None,
    ) -> Lock:
        """Waits for the lock and returns it held:

            with client.lock("db-migration", timeout=60) as lock:
                migrate(fencing_token=lock.token, stop=lock.lost)

        `lease_duration` (whole seconds) defaults to the sidecar's (15 s).
        The wait is bounded by `wait_timeout` and `timeout` (seconds; the
        smaller of those given, else DEFAULT_WAIT_TIMEOUT, 5 min; 0 fails at
        once if the lock is held): the sidecar is told, and the client's own
        clock gives up one second later if the sidecar never answers (say,
        it froze). Either way it raises LockTimeout, a TimeoutError.
        """
        wait = wait_bound(wait_timeout, timeout)
        request = lock_service_pb2.AcquireRequest(
            name=name,
            holder=holder or default_name("MSYNC_HOLDER"),
            lease_duration=to_duration(lease_duration),
            wait_timeout=to_duration(wait),
        )
        # The returned object is both the call and the iterator of its messages;
        # the call has no deadline, as it lasts as long as the hold.
        messages = self._lock_streams.Acquire(request)
        call: grpc.Call = messages
        clock = _WaitClock(wait + WAIT_GRACE, call.cancel)
        timed_out = LockTimeout(
            grpc.StatusCode.DEADLINE_EXCEEDED, f"lock {name} was not acquired within {wait:g} s: the sidecar did not answer in time"
        )
        try:
            first = next(messages)
        except grpc.RpcError as error:
            if not clock.settle():
                raise timed_out from None
            raise from_rpc_error(error, waiting=True) from None
        except StopIteration:
            clock.settle()
            raise SyncError(
                grpc.StatusCode.UNAVAILABLE, f"the sidecar ended the stream before lock {name} was acquired"
            ) from None
        except BaseException:
            clock.settle()
            call.cancel()  # for example KeyboardInterrupt while waiting
            raise
        if not clock.settle():
            raise timed_out  # the stream is cancelled, which releases what it got just then
        if first.WhichOneof("event") != "acquired":
            call.cancel()
            raise SyncError(grpc.StatusCode.INTERNAL, f"the sidecar's first message for lock {name} was not `acquired`")
        return Lock(name, first.acquired, call, messages, self.locks, self.timeout)

    def try_lock(
        self, name: str, *, holder: str | None = None, lease_duration: float | None = None, timeout: float | None = None
    ) -> Lease | None:
        """One attempt without waiting: a Lease held for `lease_duration`
        (whole seconds; default the sidecar's) unless renewed, or None if
        someone else holds the lock. No answer within `timeout` raises
        DeadlineExceeded (a lease the sidecar granted after that runs out
        unrenewed)."""
        holder = holder or default_name("MSYNC_HOLDER")
        request = lock_service_pb2.TryAcquireRequest(name=name, holder=holder, lease_duration=to_duration(lease_duration))
        try:
            response = self.locks.TryAcquire(request, timeout=call_timeout(timeout, self.timeout))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        if not response.acquired:
            return None
        return Lease(self.locks, name, response.fencing_token, holder, from_duration(response.valid_for), self.timeout)

    def get_lock(self, name: str, *, fresh: bool = False, timeout: float | None = None) -> LockInfo:
        """Inspects a lock; `fresh` reads the API server instead of the sidecar's cache."""
        try:
            r = self.locks.GetLock(
                lock_service_pb2.GetLockRequest(name=name, consistency=consistency(fresh)), timeout=call_timeout(timeout, self.timeout)
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return LockInfo(r.held, r.holder, r.fencing_token, from_duration(r.lease_duration), from_duration(r.remaining))

    def campaign(
        self, name: str, *, candidate: str | None = None, value: str = "", lease_duration: float | None = None
    ) -> Campaign:
        """Joins an election as a candidate; iterate the campaign for its events:

            with client.campaign("scheduler", value=my_address) as campaign:
                for event in campaign:
                    if isinstance(event, Elected):
                        lead(until=event.done)

        The campaign has no deadline; a sidecar that stops answering ends
        it with Unavailable (keepalive), and a term ends on its own
        heartbeat deadline long before that.
        """
        return Campaign(
            self.elections,
            self._election_streams,
            election_service_pb2.CampaignRequest(
                name=name,
                candidate=candidate or default_name("MSYNC_CANDIDATE", "POD_NAME"),
                value=value,
                lease_duration=to_duration(lease_duration),
            ),
            self.timeout,
        )

    def get_leader(self, name: str, *, fresh: bool = False, timeout: float | None = None) -> Leader:
        """Reads the current leader; `leader` is "" when nobody leads."""
        try:
            r = self.elections.GetLeader(
                election_service_pb2.GetLeaderRequest(name=name, consistency=consistency(fresh)),
                timeout=call_timeout(timeout, self.timeout),
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return Leader(r.leader, r.value, r.term)

    def observe(self, name: str) -> Iterator[Leader]:
        """Yields the current leader at once and then every change, without
        campaigning. It has no deadline; a sidecar that stops answering
        ends it with Unavailable (keepalive: within about 15 s)."""
        call = self._election_streams.Observe(election_service_pb2.ObserveRequest(name=name))
        try:
            for message in call:
                yield Leader(message.leader, message.value, message.term)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                raise from_rpc_error(error) from None
        finally:
            call.cancel()

    def close(self) -> None:
        self._streams.close()
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
