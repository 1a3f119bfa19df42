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
from typing import Callable, Iterator

import grpc

from metaparticle.sync.v1 import lock_service_pb2, lock_service_pb2_grpc

from ._common import LostError, SyncError, address_or_default, default_name, from_duration, loss_reason, to_duration


class _Watchdog:
    """Calls `on_expired` once unless `extend` keeps moving the deadline."""

    def __init__(self, on_expired: Callable[[], None]) -> None:
        self._on_expired = on_expired
        self._changed = threading.Condition()
        self._deadline = time.monotonic()
        self._stopped = False

    def start(self, valid_for: float) -> None:
        self.extend(valid_for)
        threading.Thread(target=self._run, name="msync-watchdog", daemon=True).start()

    def extend(self, valid_for: float) -> None:
        with self._changed:
            self._deadline = time.monotonic() + valid_for
            self._changed.notify()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()

    def remaining(self) -> float:
        with self._changed:
            return 0.0 if self._stopped else max(0.0, self._deadline - time.monotonic())

    def _run(self) -> None:
        with self._changed:
            while not self._stopped:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            if self._stopped:
                return
        self._on_expired()


class Lock:
    """A held lock. Use it as a context manager, which releases it on exit.

    `lost` is set the moment the holder must stop acting: the sidecar reported
    the lock lost, its heartbeats stopped, or the lock was released; `error`
    then says why.
    """

    def __init__(
        self,
        name: str,
        acquired: lock_service_pb2.Acquired,
        call: grpc.Call,
        messages: Iterator[lock_service_pb2.AcquireResponse],
    ) -> None:
        self.name = name
        self.token: int = acquired.fencing_token
        """Fencing token: strictly greater than every earlier token of this lock."""
        self.holder = acquired.holder
        self.lease_duration = from_duration(acquired.lease_duration)
        self.lost = threading.Event()
        self.error: LostError | None = None
        self._call = call
        self._guard = threading.Lock()
        self._watchdog = _Watchdog(
            lambda: self._end(
                "heartbeat-timeout",
                f"no heartbeat from the sidecar before lock {name} (token {self.token}) stopped being valid",
            )
        )
        self._watchdog.start(from_duration(acquired.valid_for))
        threading.Thread(target=self._follow, args=(messages,), name=f"msync-lock-{name}", daemon=True).start()

    @property
    def valid_for(self) -> float:
        """Seconds the holder may still act without another heartbeat."""
        return self._watchdog.remaining()

    def release(self) -> None:
        """Releases the lock; the next waiter gets it at once. Safe to repeat."""
        self._end("released", f"lock {self.name} was released")

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
                    self._end(loss_reason(message.lost.reason), message.lost.message)
            self._end("stream-ended", f"the sidecar ended the stream of lock {self.name}")
        except grpc.RpcError as error:
            # Nothing changes if the lock already ended, which cancelled the stream.
            self._end("stream-ended", f"the sidecar ended the stream of lock {self.name}: {error}")

    def _end(self, reason: str, message: str) -> None:
        with self._guard:
            if self.error is not None:
                return
            self.error = LostError(reason, message)
            self._watchdog.stop()
        self.lost.set()
        # Cancelling the stream is what releases the lock in the sidecar.
        self._call.cancel()


class Client:
    """A blocking client of one sidecar; safe to share between threads.

    The address defaults to $MSYNC_ADDRESS, else 127.0.0.1:13131. Closing the
    client releases every lock it holds.
    """

    def __init__(self, address: str | None = None) -> None:
        self.address = address_or_default(address)
        self._channel = grpc.insecure_channel(self.address)
        self.locks = lock_service_pb2_grpc.LockServiceStub(self._channel)
        """The generated stub, for TryAcquire, Renew, Release and GetLock."""

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
        return Lock(name, first.acquired, call, messages)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
