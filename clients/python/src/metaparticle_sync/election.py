"""The asyncio client: leader election, and locks (aio_lock.py), with grpc.aio.

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

from metaparticle.sync.v1 import election_service_pb2, election_service_pb2_grpc, lock_service_pb2, lock_service_pb2_grpc

from ._common import (
    CampaignEvent,
    Deposed,
    Elected,
    Leader,
    LeaderChanged,
    LockInfo,
    SyncError,
    address_or_default,
    consistency,
    default_name,
    from_duration,
    loss_reason,
    to_duration,
)
from .aio_lock import AsyncLease, AsyncLock


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
    error (for example INVALID_ARGUMENT for a bad name).
    """

    def __init__(self, stub: election_service_pb2_grpc.ElectionServiceAsyncStub, request: election_service_pb2.CampaignRequest) -> None:
        self.name = request.name
        self.candidate = request.candidate
        self._stub = stub
        self._request = request
        self._events: asyncio.Queue[CampaignEvent | None] = asyncio.Queue()
        self._leading: _Term | None = None
        self._resigning = False
        self._closed = False
        self._error: SyncError | None = None
        self._join()

    def _join(self) -> None:
        """Opens a Campaign stream and reads it; a replaced stream's messages are ignored."""
        self._call = self._stub.Campaign(self._request)
        self._reader = asyncio.get_running_loop().create_task(self._follow(self._call))

    @property
    def leading(self) -> bool:
        return self._leading is not None

    async def proclaim(self, value: str) -> None:
        """Publishes a new value to observers; only the leader may."""
        term = self._current_term("proclaim")
        call = self._stub.Proclaim(election_service_pb2.ProclaimRequest(name=self.name, term=term, value=value))
        try:
            await call
        except grpc.aio.AioRpcError as error:
            raise SyncError.from_rpc_error(error, error.trailing_metadata()) from None

    async def resign(self) -> None:
        """Steps down now and ends the campaign; another candidate is elected at once."""
        term = self._current_term("resign")
        self._resigning = True
        try:
            await self._stub.Resign(election_service_pb2.ResignRequest(name=self.name, term=term))
        except grpc.aio.AioRpcError as error:
            self._resigning = False
            raise SyncError.from_rpc_error(error, error.trailing_metadata()) from None
        self._depose("released", "this candidate resigned")

    async def close(self) -> None:
        """Leaves the campaign, giving up leadership at once if leading."""
        self._closed = True
        self._depose("released", "the campaign was closed")
        self._call.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

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

    def _current_term(self, action: str) -> int:
        if self._leading is None:
            raise SyncError(
                grpc.StatusCode.FAILED_PRECONDITION, f"cannot {action} election {self.name}: this candidate is not the leader"
            )
        return self._leading.number

    async def _follow(self, call: grpc.aio.UnaryStreamCall) -> None:  # type: ignore[type-arg]
        try:
            async for message in call:
                if call is not self._call:
                    return
                event = message.WhichOneof("event")
                if event == "elected":
                    self._depose("taken-over", "elected again with a new term")
                    self._leading = _Term(message.elected.term)
                    self._heartbeat(from_duration(message.elected.valid_for))
                    self._events.put_nowait(Elected(self._leading.number, self._leading.done))
                elif event == "renewed":
                    self._heartbeat(from_duration(message.renewed.valid_for))
                elif event == "deposed":
                    if self._leading is not None and self._leading.number == message.deposed.term:
                        self._depose(loss_reason(message.deposed.reason), message.deposed.message)
                elif event == "leader_changed":
                    changed = message.leader_changed
                    # The sidecar tells a candidate only of others' terms, so
                    # ours is over; say so first, in order.
                    if self._resigning:
                        self._depose("released", "this candidate resigned")
                    else:
                        self._depose("taken-over", "another term began")
                    self._events.put_nowait(LeaderChanged(changed.leader, changed.value, changed.term))
            if call is not self._call:
                return
            self._depose("released" if self._resigning else "stream-ended", "the campaign ended")
        except grpc.aio.AioRpcError as error:
            if call is not self._call:
                return
            if error.code() == grpc.StatusCode.CANCELLED:
                self._depose("released", "the campaign was closed")
            else:
                self._error = SyncError.from_rpc_error(error, error.trailing_metadata())
                self._depose("stream-ended", str(self._error))
        except asyncio.CancelledError:
            if call is not self._call:
                return
            self._depose("released", "the campaign was closed")
        self._closed = True
        self._events.put_nowait(None)

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
        if self._resigning or self._closed:
            return
        stale = self._call
        self._join()
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


class AsyncClient:
    """An asyncio client of one sidecar, for locks and elections.

    The address defaults to $MSYNC_ADDRESS, else 127.0.0.1:13131. Closing the
    client ends every campaign it runs.
    """

    def __init__(self, address: str | None = None) -> None:
        self.address = address_or_default(address)
        self._channel = grpc.aio.insecure_channel(self.address)
        self.elections = election_service_pb2_grpc.ElectionServiceStub(self._channel)
        self.locks = lock_service_pb2_grpc.LockServiceStub(self._channel)

    async def lock(
        self,
        name: str,
        *,
        holder: str | None = None,
        lease_duration: float | None = None,
        wait_timeout: float | None = None,
    ) -> AsyncLock:
        """Waits for the lock and returns it held:

            async with await client.lock("db-migration") as lock:
                await migrate(fencing_token=lock.token, stop=lock.lost)

        `lease_duration` (whole seconds) defaults to the sidecar's (15 s);
        `wait_timeout` (seconds) makes it raise SyncError DEADLINE_EXCEEDED if
        the lock is not free in time; 0 fails at once.
        """
        request = lock_service_pb2.AcquireRequest(
            name=name,
            holder=holder or default_name("MSYNC_HOLDER"),
            lease_duration=to_duration(lease_duration),
            wait_timeout=to_duration(wait_timeout),
        )
        call = self.locks.Acquire(request)
        try:
            first = await call.read()
        except grpc.aio.AioRpcError as error:
            raise SyncError.from_rpc_error(error, error.trailing_metadata()) from None
        except BaseException:
            call.cancel()
            raise
        if first is grpc.aio.EOF:
            raise SyncError(grpc.StatusCode.UNAVAILABLE, f"the sidecar ended the stream before lock {name} was acquired")
        message = cast(lock_service_pb2.AcquireResponse, first)
        if message.WhichOneof("event") != "acquired":
            call.cancel()
            raise SyncError(grpc.StatusCode.INTERNAL, f"the sidecar's first message for lock {name} was not `acquired`")
        return AsyncLock(name, message.acquired, call, self.locks)

    async def try_lock(self, name: str, *, holder: str | None = None, lease_duration: float | None = None) -> AsyncLease | None:
        """One attempt without waiting: a lease held unless renewed, or None if someone else holds the lock."""
        holder = holder or default_name("MSYNC_HOLDER")
        request = lock_service_pb2.TryAcquireRequest(name=name, holder=holder, lease_duration=to_duration(lease_duration))
        try:
            response = await self.locks.TryAcquire(request)
        except grpc.aio.AioRpcError as error:
            raise SyncError.from_rpc_error(error, error.trailing_metadata()) from None
        if not response.acquired:
            return None
        return AsyncLease(self.locks, name, response.fencing_token, holder, from_duration(response.valid_for))

    async def get_lock(self, name: str, *, fresh: bool = False) -> LockInfo:
        """Inspects a lock; `fresh` reads the API server instead of the sidecar's cache."""
        try:
            r = await self.locks.GetLock(lock_service_pb2.GetLockRequest(name=name, consistency=consistency(fresh)))
        except grpc.aio.AioRpcError as error:
            raise SyncError.from_rpc_error(error, error.trailing_metadata()) from None
        return LockInfo(r.held, r.holder, r.fencing_token, from_duration(r.lease_duration), from_duration(r.remaining))

    async def get_leader(self, name: str, *, fresh: bool = False) -> Leader:
        try:
            r = await self.elections.GetLeader(election_service_pb2.GetLeaderRequest(name=name, consistency=consistency(fresh)))
        except grpc.aio.AioRpcError as error:
            raise SyncError.from_rpc_error(error, error.trailing_metadata()) from None
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
        `lease_duration` (whole seconds) to the sidecar's (15 s).
        """
        request = election_service_pb2.CampaignRequest(
            name=name,
            candidate=candidate or default_name("MSYNC_CANDIDATE", "POD_NAME"),
            value=value,
            lease_duration=to_duration(lease_duration),
        )
        return AsyncCampaign(self.elections, request)

    async def observe(self, name: str) -> AsyncIterator[Leader]:
        """Yields the current leader at once and then every change, without campaigning."""
        call = self.elections.Observe(election_service_pb2.ObserveRequest(name=name))
        try:
            async for message in call:
                yield Leader(message.leader, message.value, message.term)
        except grpc.aio.AioRpcError as error:
            raise SyncError.from_rpc_error(error, error.trailing_metadata()) from None
        finally:
            call.cancel()

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()
