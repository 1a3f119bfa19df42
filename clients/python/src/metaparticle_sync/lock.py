"""Locks through the sidecar, with the blocking grpcio API, and the blocking
client (locks, semaphores, read-write locks, elections).

A lock is held for as long as its Acquire stream stays open; a background
thread reads the sidecar's heartbeats, and a watchdog thread keeps the
client's own deadline (DESIGN 3.11): a frozen or dead sidecar cannot say the
lock was lost, so if no heartbeat arrives before the last `valid_for` runs out
on this process's monotonic clock, the lock is reported lost by the client.
_hold.py has that machinery, which a semaphore's permits and a read-write
lock's holds share.
"""

from __future__ import annotations

from types import TracebackType
from typing import Iterator

import grpc

from metaparticle.sync.v1 import (
    election_service_pb2,
    election_service_pb2_grpc,
    lock_service_pb2,
    lock_service_pb2_grpc,
    rwlock_service_pb2_grpc,
    semaphore_service_pb2_grpc,
)

from . import semaphore
from ._common import (
    DEFAULT_CALL_TIMEOUT,
    STREAM_CHANNEL_OPTIONS,
    Leader,
    LockInfo,
    SemaphoreInfo,
    acquire_request,
    address_or_default,
    call_timeout,
    consistency,
    default_name,
    from_duration,
    to_duration,
    wait_bound,
)
from ._errors import from_rpc_error
from ._hold import LeaseHold, Session, open_session
from .campaign import Campaign
from .rwlock import RWLockCalls
from .semaphore import Permit, PermitLease


class Lock(Session):
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
        messages: Iterator[lock_service_pb2.AcquireResponse],
        stub: lock_service_pb2_grpc.LockServiceStub,
        timeout: float,
    ) -> None:
        self.name = name
        self.token: int = acquired.fencing_token
        """Fencing token: strictly greater than every earlier token of this lock."""
        self.holder = acquired.holder
        self.lease_duration = from_duration(acquired.lease_duration)
        self._stub = stub
        super().__init__(f"lock {name}", self.token, from_duration(acquired.valid_for), messages, timeout)

    def release(self, *, timeout: float | None = None) -> None:
        """Gives the lock back and returns once the sidecar has released it
        (its reply to Release), so the next waiter can have it from then on.

        Safe to repeat; a lock already lost or released returns at once. If
        the sidecar does not answer within `timeout` (default: the client's,
        10 s) it raises DeadlineExceeded, and the sidecar releases the lock
        when it can; if instead the lock's promise (`valid_for`) runs out
        first, it returns, as the hold is over anyway.
        """
        request = lock_service_pb2.ReleaseRequest(name=self.name, fencing_token=self.token)
        self._give_back(lambda deadline: self._stub.Release(request, timeout=deadline), timeout)


class Lease(LeaseHold):
    """A lock taken with `try_lock`: held for its lease unless renewed, and
    given back with `release()` (or by leaving `with`). `lost` is set when
    the last `valid_for` runs out without a renewal."""

    def __init__(
        self, stub: lock_service_pb2_grpc.LockServiceStub, name: str, token: int, holder: str, valid_for: float, timeout: float
    ) -> None:
        self.name = name
        self.token = token
        self.holder = holder
        self._stub = stub
        super().__init__(valid_for, timeout)

    def renew(self, lease_duration: float | None = None, *, timeout: float | None = None) -> float:
        """Extends the lease; returns the seconds the holder may now act.
        A lease that ran out and was taken raises NotHeld; no answer within
        `timeout` (default 10 s) raises DeadlineExceeded."""
        request = lock_service_pb2.RenewRequest(name=self.name, fencing_token=self.token, lease_duration=to_duration(lease_duration))
        return self._renew(lambda deadline: self._stub.Renew(request, timeout=deadline), timeout)

    def release(self, *, timeout: float | None = None) -> None:
        """Gives the lock back; the next waiter gets it at once. A lease
        that ran out and was taken raises NotHeld; no answer within `timeout`
        (default 10 s) raises DeadlineExceeded, and the lease then ends on
        its own when it runs out."""
        request = lock_service_pb2.ReleaseRequest(name=self.name, fencing_token=self.token)
        self._release(lambda deadline: self._stub.Release(request, timeout=deadline), timeout)


class Client(RWLockCalls):
    """A blocking client of one sidecar, for locks, semaphores, read-write
    locks (RWLockCalls) and elections; safe to share between threads.

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
        self._channel = grpc.insecure_channel(self.address)
        self._streams = grpc.insecure_channel(self.address, options=STREAM_CHANNEL_OPTIONS)
        self.locks = lock_service_pb2_grpc.LockServiceStub(self._channel)
        self.elections = election_service_pb2_grpc.ElectionServiceStub(self._channel)
        self.semaphores = semaphore_service_pb2_grpc.SemaphoreServiceStub(self._channel)
        self._lock_streams = lock_service_pb2_grpc.LockServiceStub(self._streams)
        self._election_streams = election_service_pb2_grpc.ElectionServiceStub(self._streams)
        self._semaphore_streams = semaphore_service_pb2_grpc.SemaphoreServiceStub(self._streams)
        self.rwlocks = rwlock_service_pb2_grpc.RWLockServiceStub(self._channel)
        self._rwlock_streams = rwlock_service_pb2_grpc.RWLockServiceStub(self._streams)

    def lock(
        self,
        name: str,
        *,
        holder: str | None = None,
        lease_duration: float | None = None,
        wait_timeout: float | None = None,
        timeout: float | None = None,
        fair: bool = True,
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

        `fair=False` lets the sidecar hand the lock to this waiter when one of
        its own clients releases it, ahead of other sidecars' waiters, up to
        16 grants in a row (see `acquire_request`); the default is first come,
        first served across sidecars.
        """
        wait = wait_bound(wait_timeout, timeout)
        request = acquire_request(name, holder, lease_duration, wait, fair)
        # The returned object is both the call and the iterator of its messages;
        # the call has no deadline, as it lasts as long as the hold.
        messages = self._lock_streams.Acquire(request)
        first = open_session(messages, wait, f"lock {name}")
        return Lock(name, first.acquired, messages, self.locks, self.timeout)

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

    def acquire_permit(
        self,
        name: str,
        permits: int,
        *,
        holder: str | None = None,
        lease_duration: float | None = None,
        wait_timeout: float | None = None,
        timeout: float | None = None,
    ) -> Permit:
        """Waits for a permit of the semaphore `name`, which grants `permits`
        holds at once, and returns it held:

            with client.acquire_permit("export", 3, timeout=60) as permit:
                export(fencing_token=permit.token, stop=permit.lost)

        Every caller of a name must give the same `permits` (1 to 32);
        another number raises PermitsMismatch. The other arguments, the bounds
        of the wait and its LockTimeout are those of `lock()`.
        """
        wait = wait_bound(wait_timeout, timeout)
        messages = self._semaphore_streams.AcquirePermit(semaphore.acquire_request(name, permits, holder, lease_duration, wait))
        first = open_session(messages, wait, f"a permit of semaphore {name}")
        return Permit(name, first.acquired, messages, self.semaphores, self.timeout)

    def try_acquire_permit(
        self, name: str, permits: int, *, holder: str | None = None, lease_duration: float | None = None, timeout: float | None = None
    ) -> PermitLease:
        """One attempt without waiting: a PermitLease held for
        `lease_duration` (whole seconds; default the sidecar's) unless
        renewed. If every permit is held it raises NoPermitFree, whose
        `holders` lists them. No answer within `timeout` raises
        DeadlineExceeded."""
        request = semaphore.try_acquire_request(name, permits, holder, lease_duration)
        try:
            response = self.semaphores.TryAcquirePermit(request, timeout=call_timeout(timeout, self.timeout))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return PermitLease(self.semaphores, name, semaphore.granted(name, response), self.timeout)

    def get_semaphore(self, name: str, *, fresh: bool = False, timeout: float | None = None) -> SemaphoreInfo:
        """Inspects a semaphore; one never used has `permits` 0. `fresh` reads
        the API server instead of the sidecar's cache."""
        try:
            response = self.semaphores.GetSemaphore(semaphore.get_request(name, fresh), timeout=call_timeout(timeout, self.timeout))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return semaphore.semaphore_info(response)

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
