"""Pieces shared by the lock, semaphore, read-write lock and election wrappers."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Literal, Protocol, Union

from google.protobuf.duration_pb2 import Duration

from metaparticle.sync.v1 import lock_service_pb2, types_pb2

DEFAULT_ADDRESS = "127.0.0.1:13131"
"""Where the sidecar listens unless told otherwise."""

DEFAULT_CALL_TIMEOUT = 10.0
"""Seconds a call may take unless its `timeout=` (or the client's) says
otherwise: try_lock, try_acquire_permit, try_acquire_rwlock, renew, release,
get_lock, get_semaphore, get_rwlock, get_leader, proclaim, resign."""

DEFAULT_WAIT_TIMEOUT = 300.0
"""Seconds `lock()` waits for the lock, `acquire_permit()` for a permit and
`acquire_rwlock()` for a read-write hold, unless `wait_timeout=` or `timeout=` says otherwise."""

WAIT_GRACE = 1.0
"""Seconds the client gives the sidecar past a lock's (a permit's) wait
timeout to say so before it gives up waiting on its own clock (a frozen
sidecar says nothing)."""

KEEPALIVE_TIME = 10.0
"""Seconds between HTTP/2 pings on the streams' connection, calls or not, so
that a frozen or unreachable sidecar is noticed by a campaign, an observation
or a held lock's stream, which have no deadline of their own."""

KEEPALIVE_TIMEOUT = 5.0
"""Seconds a ping may go unanswered before the connection counts as dead and
its streams fail with UNAVAILABLE."""

STREAM_CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.keepalive_time_ms", int(KEEPALIVE_TIME * 1000)),
    ("grpc.keepalive_timeout_ms", int(KEEPALIVE_TIMEOUT * 1000)),
    # gRPC core times a ping out after grpc.http2.ping_timeout_ms (60 s by
    # default), not after the keepalive timeout: both must say 5 s.
    ("grpc.http2.ping_timeout_ms", int(KEEPALIVE_TIMEOUT * 1000)),
    ("grpc.keepalive_permit_without_calls", 1),
    # Without this, gRPC stops pinging after two pings with no data between them.
    ("grpc.http2.max_pings_without_data", 0),
    # No bandwidth-probing pings: with the 5 s ping timeout above, one sent as
    # the sidecar froze would close the connection 5 s later, before the
    # keepalive's 10 s without an answer.
    ("grpc.http2.bdp_probe", 0),
]
"""The options of the channel for the streams (Acquire, Campaign, Observe).

The calls with a deadline go on a channel of their own, without keepalive:
on a frozen sidecar each of them ends at its own deadline with
DEADLINE_EXCEEDED, rather than with UNAVAILABLE whenever the keepalive
happens to close a shared connection under it."""


def address_or_default(address: str | None) -> str:
    return address or os.environ.get("MSYNC_ADDRESS") or DEFAULT_ADDRESS


def default_name(*variables: str) -> str:
    """The first of the environment variables that is set, else host/pid."""
    for variable in variables:
        value = os.environ.get(variable)
        if value:
            return value
    return f"{socket.gethostname()}/{os.getpid()}"


def call_timeout(timeout: float | None, default: float) -> float:
    """The deadline of one call, in seconds from now: `timeout`, else the client's default."""
    if timeout is None:
        return default
    if timeout < 0:
        raise ValueError(f"timeout must not be negative, got {timeout} s")
    return timeout


def acquire_request(
    name: str, holder: str | None, lease_duration: float | None, wait: float, fair: bool
) -> lock_service_pb2.AcquireRequest:
    """The AcquireRequest of `lock()`, blocking and asyncio alike. `fair=False` asks
    FAIRNESS_NON_FAIR: the sidecar may hand the lock to this waiter when one of
    its own clients releases it, ahead of other sidecars' waiters, up to 16
    grants in a row (more handoffs per second on a hot lock, at the cost of order)."""
    return lock_service_pb2.AcquireRequest(
        name=name,
        holder=holder or default_name("MSYNC_HOLDER"),
        lease_duration=to_duration(lease_duration),
        wait_timeout=to_duration(wait),
        fairness=lock_service_pb2.FAIRNESS_UNSPECIFIED if fair else lock_service_pb2.FAIRNESS_NON_FAIR,
    )


def wait_bound(wait_timeout: float | None, timeout: float | None) -> float:
    """How long `lock()` (`acquire_permit()`) waits: the smaller of `wait_timeout` and `timeout`
    that are given, else DEFAULT_WAIT_TIMEOUT."""
    given = [value for value in (wait_timeout, timeout) if value is not None]
    if any(value < 0 for value in given):
        raise ValueError(f"wait timeouts must not be negative, got {given}")
    return min(given) if given else DEFAULT_WAIT_TIMEOUT


def to_duration(seconds: float | None) -> Duration | None:
    if seconds is None:
        return None
    if seconds < 0:
        raise ValueError(f"durations must not be negative, got {seconds} s")
    whole = int(seconds)
    return Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


def from_duration(duration: Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


class LostError(Exception):
    """Why a lock, a permit or a term of leadership ended.

    `reason` is one of "renew-deadline-exceeded", "taken-over", "shutdown",
    "deleted" (the sidecar's), "heartbeat-timeout" (no heartbeat before the
    last one ran out) or "stream-ended". A normal release is not a loss.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def loss_reason(reason: types_pb2.LossReason.ValueType) -> str:
    return {
        types_pb2.LOSS_REASON_RENEW_DEADLINE_EXCEEDED: "renew-deadline-exceeded",
        types_pb2.LOSS_REASON_TAKEN_OVER: "taken-over",
        types_pb2.LOSS_REASON_SHUTDOWN: "shutdown",
        types_pb2.LOSS_REASON_DELETED: "deleted",
    }.get(reason, "unknown")


def consistency(fresh: bool) -> types_pb2.ReadConsistency.ValueType:
    return types_pb2.READ_CONSISTENCY_FRESH if fresh else types_pb2.READ_CONSISTENCY_CACHED


@dataclass(frozen=True)
class LockInfo:
    """A lock as the sidecar observed it; durations in seconds."""

    held: bool
    holder: str
    token: int
    lease_duration: float
    remaining: float
    """Seconds until the lease expires unless renewed."""


@dataclass(frozen=True)
class PermitHolder:
    """One hold of a semaphore's permit as the sidecar observed it; durations in seconds."""

    holder: str
    holder_identity: str
    """The identity of the sidecar process that holds it."""
    token: int
    """The hold's fencing token; 0 for a hold through another sidecar."""
    lease_duration: float
    remaining: float
    """Seconds until the hold's lease expires unless renewed."""


@dataclass(frozen=True)
class SemaphoreInfo:
    """A semaphore as the sidecar observed it."""

    permits: int
    """N; 0 for a semaphore never used."""
    holders: tuple[PermitHolder, ...]
    token: int
    """The last fencing token granted; 0 if none was."""
    waiting_daemons: tuple[str, ...]
    """The identities of the sidecars waiting for a permit, in the order they will be served."""


@dataclass(frozen=True)
class ReaderSeat:
    """The shared holds of a read-write lock through one sidecar, which share
    one entry in the lock; `remaining` in seconds."""

    holder_identity: str
    """The identity of the sidecar process whose clients hold the lock shared."""
    holder: str
    """The holder name of that sidecar's first reader."""
    readers: int
    """How many shared holds that sidecar has."""
    remaining: float
    """Seconds until the seat's lease expires unless renewed."""


@dataclass(frozen=True)
class RWLockInfo:
    """A read-write lock as the sidecar observed it."""

    held: bool
    mode: Literal["shared", "exclusive", ""]
    """How the lock is held; "" when it is not."""
    holder: str
    """The exclusive holder's name; "" unless held exclusive."""
    holder_identity: str
    """The identity of the exclusive holder's sidecar; "" unless held exclusive."""
    token: int
    """The current or last exclusive hold's fencing token; 0 if it never was held exclusive."""
    remaining: float
    """Seconds until the exclusive hold's lease expires unless renewed; 0 unless held exclusive."""
    readers: tuple[ReaderSeat, ...]
    """One seat per sidecar whose clients hold the lock shared."""
    waiting_daemons: tuple[str, ...]
    """The identities of the sidecars waiting for the lock, in the order they will be served."""

    @property
    def reader_count(self) -> int:
        """The shared holds, over every sidecar's seat."""
        return sum(seat.readers for seat in self.readers)


@dataclass(frozen=True)
class Leader:
    """The leader of an election; `leader` is "" when nobody leads."""

    leader: str
    value: str
    term: int


class Flag(Protocol):
    """What `Elected.done` is: a threading.Event (blocking client) or an asyncio.Event."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class Elected:
    """This candidate leads. `done` is set when the term ends: stop leading."""

    term: int
    done: Flag = field(repr=False)


@dataclass(frozen=True)
class Deposed:
    """This candidate's term ended; it stays a candidate and may be elected again.

    `reason` is a LostError reason, or "released" when it resigned or closed the campaign.
    """

    term: int
    reason: str
    message: str


@dataclass(frozen=True)
class LeaderChanged:
    """Someone else leads, or nobody does (`leader` is "")."""

    leader: str
    value: str
    term: int


CampaignEvent = Union[Elected, Deposed, LeaderChanged]
