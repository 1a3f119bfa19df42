"""Locks through the sidecar, with the blocking grpcio API.

A lock is held for as long as its Acquire stream stays open; a background
thread reads the sidecar's heartbeats, and a watchdog thread keeps the
client's own deadline (DESIGN 3.1): a frozen or dead sidecar cannot say the
lock was lost, so if no heartbeat arrives before the last `valid_for` runs out
on this process's monotonic clock, the lock is reported lost by the client.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Iterator

import grpc

from metaparticle.sync.v1 import election_service_pb2, election_service_pb2_grpc, lock_service_pb2, lock_service_pb2_grpc

from ._common import (
    Leader,
    LockInfo,
    LostError,
    SyncError,
    address_or_default,
    consistency,
    default_name,
    from_duration,
    loss_reason,
    sync_error,
    to_duration,
)
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

    def release(self) -> None:
        """Releases the lock and returns once the sidecar has given it back,
        so the next waiter can have it from then on. Safe to repeat."""
        if self._end(None):
            _await_released(self._stub, self.name, self.token, self.lease_duration)

    def __enter__(self) -> Lock:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()

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
        """Ends the lock, as lost (`loss`) or released (None); True if this call ended it."""
        with self._guard:
            if self._ended:
                return False
            self._ended = True
            self.error = loss
            self._watchdog.stop()
        if loss is not None:
            self.lost.set()
        # Cancelling the stream is what releases the lock in the sidecar.
        self._call.cancel()
        return True


class Lease:
    """A lock taken with `try_lock`: held for its lease unless renewed, and
    given back with `release()` (or by leaving `with`). `lost` is set when
    the last `valid_for` runs out without a renewal."""

    def __init__(self, stub: lock_service_pb2_grpc.LockServiceStub, name: str, token: int, holder: str, valid_for: float) -> None:
        self.name = name
        self.token = token
        self.holder = holder
        self.lost = threading.Event()
        self._stub = stub
        self._watchdog = Watchdog(self.lost.set)
        self._watchdog.start(valid_for)

    @property
    def valid_for(self) -> float:
        return self._watchdog.remaining()

    def renew(self, lease_duration: float | None = None) -> float:
        """Extends the lease; returns the seconds the holder may now act.
        A lease that ran out and was taken raises SyncError FAILED_PRECONDITION."""
        request = lock_service_pb2.RenewRequest(name=self.name, fencing_token=self.token, lease_duration=to_duration(lease_duration))
        try:
            response = self._stub.Renew(request)
        except grpc.RpcError as error:
            raise sync_error(error) from None
        valid_for = from_duration(response.valid_for)
        self._watchdog.extend(valid_for)
        return valid_for

    def release(self) -> None:
        """Gives the lock back; the next waiter gets it at once."""
        try:
            self._stub.Release(lock_service_pb2.ReleaseRequest(name=self.name, fencing_token=self.token))
        except grpc.RpcError as error:
            raise sync_error(error) from None
        self._watchdog.stop()

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if not self.lost.is_set():
            self.release()


def _await_released(stub: lock_service_pb2_grpc.LockServiceStub, name: str, token: int, lease_duration: float) -> None:
    """Reads the lock until the sidecar no longer shows `token` as held.

    Closing the stream is what releases a lock held by Acquire, and the
    sidecar has no reply for that; the read goes on the same channel, after
    the cancellation. It gives up after the lease, when the lock is free anyway.
    """
    deadline = time.monotonic() + max(lease_duration, 1.0)
    pause = 0.005
    while time.monotonic() < deadline:
        try:
            r = stub.GetLock(lock_service_pb2.GetLockRequest(name=name, consistency=consistency(True)), timeout=deadline - time.monotonic())
        except grpc.RpcError:
            return
        if not r.held or r.fencing_token != token:
            return
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


class Client:
    """A blocking client of one sidecar, for locks and elections; safe to share between threads.

    The address defaults to $MSYNC_ADDRESS, else 127.0.0.1:13131. Closing the
    client releases every lock it holds.
    """

    def __init__(self, address: str | None = None) -> None:
        self.address = address_or_default(address)
        self._channel = grpc.insecure_channel(self.address)
        self.locks = lock_service_pb2_grpc.LockServiceStub(self._channel)
        self.elections = election_service_pb2_grpc.ElectionServiceStub(self._channel)

    def lock(
        self,
        name: str,
        *,
        holder: str | None = None,
        lease_duration: float | None = None,
        wait_timeout: float | None = None,
    ) -> Lock:
        """Waits for the lock and returns it held:

            with client.lock("db-migration") as lock:
                migrate(fencing_token=lock.token, stop=lock.lost)

        `lease_duration` (whole seconds) defaults to the sidecar's (15 s).
        `wait_timeout` (seconds) makes it raise SyncError with
        DEADLINE_EXCEEDED if the lock is not free in time; 0 fails at once.
        """
        request = lock_service_pb2.AcquireRequest(
            name=name,
            holder=holder or default_name("MSYNC_HOLDER"),
            lease_duration=to_duration(lease_duration),
            wait_timeout=to_duration(wait_timeout),
        )
        # The returned object is both the call and the iterator of its messages.
        messages = self.locks.Acquire(request)
        call: grpc.Call = messages
        try:
            first = next(messages)
        except grpc.RpcError as error:
            raise SyncError.from_rpc_error(error, call.trailing_metadata()) from None
        except StopIteration:
            raise SyncError(
                grpc.StatusCode.UNAVAILABLE, f"the sidecar ended the stream before lock {name} was acquired"
            ) from None
        except BaseException:
            call.cancel()  # for example KeyboardInterrupt while waiting
            raise
        if first.WhichOneof("event") != "acquired":
            call.cancel()
            raise SyncError(grpc.StatusCode.INTERNAL, f"the sidecar's first message for lock {name} was not `acquired`")
        return Lock(name, first.acquired, call, messages, self.locks)

    def try_lock(self, name: str, *, holder: str | None = None, lease_duration: float | None = None) -> Lease | None:
        """One attempt without waiting: a Lease held for `lease_duration`
        (whole seconds; default the sidecar's) unless renewed, or None if
        someone else holds the lock."""
        holder = holder or default_name("MSYNC_HOLDER")
        request = lock_service_pb2.TryAcquireRequest(name=name, holder=holder, lease_duration=to_duration(lease_duration))
        try:
            response = self.locks.TryAcquire(request)
        except grpc.RpcError as error:
            raise sync_error(error) from None
        if not response.acquired:
            return None
        return Lease(self.locks, name, response.fencing_token, holder, from_duration(response.valid_for))

    def get_lock(self, name: str, *, fresh: bool = False) -> LockInfo:
        """Inspects a lock; `fresh` reads the API server instead of the sidecar's cache."""
        try:
            r = self.locks.GetLock(lock_service_pb2.GetLockRequest(name=name, consistency=consistency(fresh)))
        except grpc.RpcError as error:
            raise sync_error(error) from None
        return LockInfo(r.held, r.holder, r.fencing_token, from_duration(r.lease_duration), from_duration(r.remaining))

    def campaign(
        self, name: str, *, candidate: str | None = None, value: str = "", lease_duration: float | None = None
    ) -> Campaign:
        """Joins an election as a candidate; iterate the campaign for its events:

            with client.campaign("scheduler", value=my_address) as campaign:
                for event in campaign:
                    if isinstance(event, Elected):
                        lead(until=event.done)
        """
        return Campaign(
            self.elections,
            election_service_pb2.CampaignRequest(
                name=name,
                candidate=candidate or default_name("MSYNC_CANDIDATE", "POD_NAME"),
                value=value,
                lease_duration=to_duration(lease_duration),
            ),
        )

    def get_leader(self, name: str, *, fresh: bool = False) -> Leader:
        try:
            r = self.elections.GetLeader(election_service_pb2.GetLeaderRequest(name=name, consistency=consistency(fresh)))
        except grpc.RpcError as error:
            raise sync_error(error) from None
        return Leader(r.leader, r.value, r.term)

    def observe(self, name: str) -> Iterator[Leader]:
        """Yields the current leader at once and then every change, without campaigning."""
        call = self.elections.Observe(election_service_pb2.ObserveRequest(name=name))
        try:
            for message in call:
                yield Leader(message.leader, message.value, message.term)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                raise sync_error(error) from None
        finally:
            call.cancel()

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
