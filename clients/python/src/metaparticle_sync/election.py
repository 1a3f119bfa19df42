"""The asyncio client: leader election, and locks (aio_lock.py), semaphores
(aio_semaphore.py) and read-write locks (aio_rwlock.py), with grpc.aio.

A campaign reads its stream in a task of its own, so heartbeats are handled
while the caller is busy leading, and keeps the client's own deadline on the
event loop's monotonic clock: if no heartbeat arrives before the last
`valid_for` runs out, the term is ended by the client (DESIGN 3.1), which
closes that stream (so the sidecar gives the term up instead of renewing a
leadership nobody acts on) and campaigns again on a new one.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import AsyncIterator, cast

import grpc
import grpc.aio

from metaparticle.sync.v1 import (
    election_service_pb2,
    election_service_pb2_grpc,
    lock_service_pb2,
    lock_service_pb2_grpc,
    rwlock_service_pb2_grpc,
    semaphore_service_pb2,
    semaphore_service_pb2_grpc,
    types_pb2,
)

from . import semaphore
from ._aio_hold import open_session
from ._common import (
    DEFAULT_CALL_TIMEOUT,
    STREAM_CHANNEL_OPTIONS,
    CampaignEvent,
    Deposed,
    Elected,
    Leader,
    LeaderChanged,
    LockInfo,
    SemaphoreInfo,
    acquire_request,
    address_or_default,
    call_timeout,
    consistency,
    default_name,
    from_duration,
    loss_reason,
    to_duration,
    wait_bound,
)
from ._errors import DeadlineExceeded, NotHeld, SyncError, from_rpc_error, shutting_down
from .aio_lock import AsyncLease, AsyncLock
from .aio_rwlock import AsyncRWLockCalls
from .aio_semaphore import AsyncPermit, AsyncPermitLease


class _Term:
    def __init__(self, number: int) -> None:
        self.number = number
        self.done = asyncio.Event()
        self.watchdog: asyncio.TimerHandle | None = None
        self.deadline = 0.0


class AsyncCampaign:
    """This process's candidacy in an election; iterate it for its events.

    The campaign ends with `resign()`, `close()` or leaving `async with`; the
    iteration then stops, or raises SyncError if the sidecar ended it with an
    error (for example InvalidArgument for a bad name, or Unavailable when
    the sidecar stopped answering). From the moment `resign()` or `close()`
    is called, no `Elected` is reported again. A `Deposed` with reason
    "shutdown" (the sidecar is shutting down) ends the campaign: its stream is
    closed at once, which lets the sidecar hand the leadership on, and the
    iteration raises Unavailable (reason "SHUTTING_DOWN").
    """

    def __init__(
        self,
        stub: election_service_pb2_grpc.ElectionServiceAsyncStub,
        streams: election_service_pb2_grpc.ElectionServiceAsyncStub,
        request: election_service_pb2.CampaignRequest,
        timeout: float,
    ) -> None:
        self.name = request.name
        self.candidate = request.candidate
        self._stub = stub
        self._streams = streams
        self._request = request
        self._timeout = timeout
        self._events: asyncio.Queue[CampaignEvent | None] = asyncio.Queue()
        self._leading: _Term | None = None
        self._leaving = False
        """resign() or close() was called: never elected again."""
        self._closed = False
        self._error: SyncError | None = None
        self._call: grpc.aio.UnaryStreamCall | None = None  # type: ignore[type-arg]
        self._readers: list[asyncio.Task[None]] = []
        self._join()

    def _join(self) -> None:
        """Opens a Campaign stream and reads it; a replaced stream's messages are ignored."""
        call = self._streams.Campaign(self._request)
        self._call = call
        self._readers.append(asyncio.get_running_loop().create_task(self._follow(call)))

    @property
    def leading(self) -> bool:
        return self._leading is not None

    async def proclaim(self, value: str, *, timeout: float | None = None) -> None:
        """Publishes a new value to observers; only the leader may (else
        NotHeld). No answer within `timeout` (default 10 s) raises DeadlineExceeded."""
        if self._leading is None:
            raise self._not_leading("proclaim")
        request = election_service_pb2.ProclaimRequest(name=self.name, term=self._leading.number, value=value)
        try:
            await self._stub.Proclaim(request, timeout=call_timeout(timeout, self._timeout))
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None

    async def resign(self, *, timeout: float | None = None) -> None:
        """Steps down and ends the campaign; another candidate is elected at once.

        This side stops leading the moment it is called: the term's `done` is
        set and `Deposed` ("released") reported before the sidecar is asked,
        and no `Elected` comes after, whatever the sidecar answers. It returns
        once the sidecar has given the leadership up, or the term's promise
        (`valid_for`) ran out; if the sidecar does not answer within `timeout`
        (default 10 s) while the promise runs, it raises DeadlineExceeded, and
        the sidecar gives the leadership up when it reads the closed stream.
        Not leading, it just leaves the campaign.
        """
        limit = call_timeout(timeout, self._timeout)
        if self._closed:
            return
        self._leaving = True
        term = self._leading
        promise = max(0.0, term.deadline - asyncio.get_running_loop().time()) if term is not None else 0.0
        self._depose("released", "this candidate resigned")
        failure: SyncError | None = None
        try:
            if term is not None:
                await self._stub.Resign(election_service_pb2.ResignRequest(name=self.name, term=term.number), timeout=min(limit, promise))
        except grpc.aio.AioRpcError as error:
            failure = from_rpc_error(error)
        finally:
            self._leave()
        if isinstance(failure, NotHeld):
            return  # the term had already ended in the sidecar
        if isinstance(failure, DeadlineExceeded) and promise <= limit:
            return  # the promise ran out first: the term is over anyway
        if failure is not None:
            raise failure

    async def close(self) -> None:
        """Leaves the campaign, giving up leadership at once if leading."""
        self._leaving = True
        self._depose("released", "the campaign was closed")
        self._leave()
        await asyncio.gather(*self._readers, return_exceptions=True)

    def __aiter__(self) -> AsyncIterator[CampaignEvent]:
        return self

    async def __anext__(self) -> CampaignEvent:
        event = await self._events.get()
        if event is None:
            self._events.put_nowait(None)  # later calls end too
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        return event

    async def __aenter__(self) -> AsyncCampaign:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    def _not_leading(self, action: str) -> NotHeld:
        return NotHeld(grpc.StatusCode.FAILED_PRECONDITION, f"cannot {action} election {self.name}: this candidate is not the leader")

    def _leave(self) -> None:
        """Ends the campaign on this side: closes the stream (which withdraws
        the candidacy in the sidecar) and ends the iteration."""
        if self._closed:
            return
        call = self._call
        self._call = None  # whatever the stream says from now on is ignored
        self._finish()
        if call is not None:
            call.cancel()

    def _finish(self) -> None:
        self._closed = True
        self._events.put_nowait(None)

    async def _follow(self, call: grpc.aio.UnaryStreamCall) -> None:  # type: ignore[type-arg]
        try:
            async for message in call:
                if call is not self._call:
                    return
                event = message.WhichOneof("event")
                if event == "elected":
                    self._depose("taken-over", "elected again with a new term")
                    if self._leaving:
                        continue  # resign or close was called: never elected again
                    self._leading = _Term(message.elected.term)
                    self._heartbeat(from_duration(message.elected.valid_for))
                    self._events.put_nowait(Elected(self._leading.number, self._leading.done))
                elif event == "renewed":
                    self._heartbeat(from_duration(message.renewed.valid_for))
                elif event == "deposed":
                    if self._leading is not None and self._leading.number == message.deposed.term:
                        self._depose(loss_reason(message.deposed.reason), message.deposed.message)
                    if message.deposed.reason == types_pb2.LOSS_REASON_SHUTDOWN:
                        # The campaign is over, as when the stream ends with the
                        # sidecar shutting down. Closing the stream is the
                        # acknowledgement the sidecar waits for before it gives
                        # the leadership up (docs/design.md 3.7).
                        self._error = shutting_down(message.deposed.message)
                        self._call = None
                        self._finish()
                        call.cancel()
                        return
                elif event == "leader_changed":
                    changed = message.leader_changed
                    # The sidecar tells a candidate only of others' terms, so
                    # ours is over; say so first, in order.
                    self._depose("taken-over", "another term began")
                    self._events.put_nowait(LeaderChanged(changed.leader, changed.value, changed.term))
            if call is not self._call:
                return
            self._depose("released" if self._leaving else "stream-ended", "the campaign ended")
        except grpc.aio.AioRpcError as error:
            if call is not self._call:
                return
            if error.code() == grpc.StatusCode.CANCELLED:
                self._depose("released", "the campaign was closed")
            else:
                self._error = from_rpc_error(error)
                self._depose("stream-ended", str(self._error))
        except asyncio.CancelledError:
            if call is not self._call:
                return
            self._depose("released", "the campaign was closed")
        self._call = None
        self._finish()

    def _heartbeat(self, valid_for: float) -> None:
        term = self._leading
        if term is None:
            return
        loop = asyncio.get_running_loop()
        if term.watchdog is not None:
            if loop.time() >= term.deadline:
                # Read after the deadline (say, this process was paused): the
                # term already stopped being valid, and a late heartbeat does not revive it.
                self._expired(term)
                return
            term.watchdog.cancel()
        term.deadline = loop.time() + valid_for
        term.watchdog = loop.call_at(term.deadline, lambda: self._expired(term))

    def _expired(self, term: _Term) -> None:
        """No heartbeat before the term's deadline: stop leading, and campaign again on a new stream."""
        if self._leading is not term:
            return
        self._depose("heartbeat-timeout", "no heartbeat from the sidecar before leadership stopped being valid")
        if self._leaving or self._closed:
            return
        stale = self._call
        self._join()
        if stale is not None:
            stale.cancel()

    def _depose(self, reason: str, message: str) -> None:
        """Ends the current term, if any, on this side: set `done`, then report it."""
        term = self._leading
        if term is None:
            return
        self._leading = None
        if term.watchdog is not None:
            term.watchdog.cancel()
        term.done.set()
        self._events.put_nowait(Deposed(term.number, reason, message))


class AsyncClient(AsyncRWLockCalls):
    """An asyncio client of one sidecar, for locks, semaphores, read-write
    locks (AsyncRWLockCalls) and elections; the calls of `Client`, awaited,
    with the same `timeout=` on each.

    The address defaults to $MSYNC_ADDRESS, else 127.0.0.1:13131. `timeout`
    is the deadline, in seconds, of each call that does not name its own
    (default DEFAULT_CALL_TIMEOUT, 10 s). Closing the client ends every lock,
    permit, read-write hold and campaign it holds.
    """

    def __init__(self, address: str | None = None, *, timeout: float = DEFAULT_CALL_TIMEOUT) -> None:
        self.address = address_or_default(address)
        self.timeout = call_timeout(timeout, DEFAULT_CALL_TIMEOUT)
        # Two connections: one for the calls, each bounded by its deadline,
        # and one with keepalive for the streams (see STREAM_CHANNEL_OPTIONS).
        self._channel = grpc.aio.insecure_channel(self.address)
        self._streams = grpc.aio.insecure_channel(self.address, options=STREAM_CHANNEL_OPTIONS)
        self.elections = election_service_pb2_grpc.ElectionServiceStub(self._channel)
        self.locks = lock_service_pb2_grpc.LockServiceStub(self._channel)
        self.semaphores = semaphore_service_pb2_grpc.SemaphoreServiceStub(self._channel)
        self._election_streams = election_service_pb2_grpc.ElectionServiceStub(self._streams)
        self._lock_streams = lock_service_pb2_grpc.LockServiceStub(self._streams)
        self._semaphore_streams = semaphore_service_pb2_grpc.SemaphoreServiceStub(self._streams)
        self.rwlocks = rwlock_service_pb2_grpc.RWLockServiceStub(self._channel)
        self._rwlock_streams = rwlock_service_pb2_grpc.RWLockServiceStub(self._streams)

    async def lock(
        self,
        name: str,
        *,
        holder: str | None = None,
        lease_duration: float | None = None,
        wait_timeout: float | None = None,
        timeout: float | None = None,
        fair: bool = True,
    ) -> AsyncLock:
        """Waits for the lock and returns it held:

            async with await client.lock("db-migration", timeout=60) as lock:
                await migrate(fencing_token=lock.token, stop=lock.lost)

        `lease_duration` (whole seconds) defaults to the sidecar's (15 s).
        The wait is bounded by `wait_timeout` and `timeout` (seconds; the
        smaller of those given, else DEFAULT_WAIT_TIMEOUT, 5 min; 0 fails at
        once if the lock is held): the sidecar is told, and the client's own
        clock gives up one second later if the sidecar never answers. Either
        way it raises LockTimeout, a TimeoutError.

        `fair=False` lets the sidecar hand the lock to this waiter when one of
        its own clients releases it, ahead of other sidecars' waiters, up to
        16 grants in a row (see `acquire_request`); the default is first come,
        first served across sidecars.
        """
        wait = wait_bound(wait_timeout, timeout)
        request = acquire_request(name, holder, lease_duration, wait, fair)
        # No deadline on the call itself: it lasts as long as the hold.
        call = self._lock_streams.Acquire(request)
        message = cast(lock_service_pb2.AcquireResponse, await open_session(call, wait, f"lock {name}"))
        return AsyncLock(name, message.acquired, call, self.locks, self.timeout)

    async def try_lock(
        self, name: str, *, holder: str | None = None, lease_duration: float | None = None, timeout: float | None = None
    ) -> AsyncLease | None:
        """One attempt without waiting: a lease held unless renewed, or None
        if someone else holds the lock; DeadlineExceeded after `timeout`."""
        holder = holder or default_name("MSYNC_HOLDER")
        request = lock_service_pb2.TryAcquireRequest(name=name, holder=holder, lease_duration=to_duration(lease_duration))
        try:
            response = await self.locks.TryAcquire(request, timeout=call_timeout(timeout, self.timeout))
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        if not response.acquired:
            return None
        return AsyncLease(self.locks, name, response.fencing_token, holder, from_duration(response.valid_for), self.timeout)

    async def get_lock(self, name: str, *, fresh: bool = False, timeout: float | None = None) -> LockInfo:
        """Inspects a lock; `fresh` reads the API server instead of the sidecar's cache."""
        request = lock_service_pb2.GetLockRequest(name=name, consistency=consistency(fresh))
        try:
            r = await self.locks.GetLock(request, timeout=call_timeout(timeout, self.timeout))
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        return LockInfo(r.held, r.holder, r.fencing_token, from_duration(r.lease_duration), from_duration(r.remaining))

    async def acquire_permit(
        self,
        name: str,
        permits: int,
        *,
        holder: str | None = None,
        lease_duration: float | None = None,
        wait_timeout: float | None = None,
        timeout: float | None = None,
    ) -> AsyncPermit:
        """`Client.acquire_permit`, awaited:

        async with await client.acquire_permit("export", 3, timeout=60) as permit:
            await export(fencing_token=permit.token, stop=permit.lost)
        """
        wait = wait_bound(wait_timeout, timeout)
        call = self._semaphore_streams.AcquirePermit(semaphore.acquire_request(name, permits, holder, lease_duration, wait))
        first = await open_session(call, wait, f"a permit of semaphore {name}")
        message = cast(semaphore_service_pb2.AcquirePermitResponse, first)
        return AsyncPermit(name, message.acquired, call, self.semaphores, self.timeout)

    async def try_acquire_permit(
        self, name: str, permits: int, *, holder: str | None = None, lease_duration: float | None = None, timeout: float | None = None
    ) -> AsyncPermitLease:
        """One attempt without waiting: a permit held for its lease unless
        renewed, or NoPermitFree (with the `holders`) if every permit is
        held; DeadlineExceeded after `timeout`."""
        request = semaphore.try_acquire_request(name, permits, holder, lease_duration)
        try:
            response = await self.semaphores.TryAcquirePermit(request, timeout=call_timeout(timeout, self.timeout))
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        return AsyncPermitLease(self.semaphores, name, semaphore.granted(name, response), self.timeout)

    async def get_semaphore(self, name: str, *, fresh: bool = False, timeout: float | None = None) -> SemaphoreInfo:
        """Inspects a semaphore; one never used has `permits` 0."""
        try:
            response = await self.semaphores.GetSemaphore(semaphore.get_request(name, fresh), timeout=call_timeout(timeout, self.timeout))
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        return semaphore.semaphore_info(response)

    async def get_leader(self, name: str, *, fresh: bool = False, timeout: float | None = None) -> Leader:
        """Reads the current leader; `leader` is "" when nobody leads."""
        request = election_service_pb2.GetLeaderRequest(name=name, consistency=consistency(fresh))
        try:
            r = await self.elections.GetLeader(request, timeout=call_timeout(timeout, self.timeout))
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        return Leader(r.leader, r.value, r.term)

    def campaign(
        self,
        name: str,
        *,
        candidate: str | None = None,
        value: str = "",
        lease_duration: float | None = None,
    ) -> AsyncCampaign:
        """Joins an election as a candidate; call it from a running event loop:

            async with client.campaign("scheduler", value=my_address) as campaign:
                async for event in campaign:
                    if isinstance(event, Elected):
                        await lead(until=event.done)

        `candidate` defaults to $MSYNC_CANDIDATE, else $POD_NAME, else host/pid;
        `lease_duration` (whole seconds) to the sidecar's (15 s). The campaign
        has no deadline; a sidecar that stops answering ends it with
        Unavailable (keepalive), and a term ends on its own heartbeat
        deadline long before that.
        """
        request = election_service_pb2.CampaignRequest(
            name=name,
            candidate=candidate or default_name("MSYNC_CANDIDATE", "POD_NAME"),
            value=value,
            lease_duration=to_duration(lease_duration),
        )
        return AsyncCampaign(self.elections, self._election_streams, request, self.timeout)

    async def observe(self, name: str) -> AsyncIterator[Leader]:
        """Yields the current leader at once and then every change, without
        campaigning. It has no deadline; a sidecar that stops answering ends
        it with Unavailable (keepalive: within about 15 s)."""
        call = self._election_streams.Observe(election_service_pb2.ObserveRequest(name=name))
        try:
            async for message in call:
                yield Leader(message.leader, message.value, message.term)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()

    async def close(self) -> None:
        await self._streams.close()
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()
