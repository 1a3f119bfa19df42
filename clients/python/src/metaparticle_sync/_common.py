"""Pieces shared by the lock and election wrappers."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Iterable, Protocol, Union

import grpc
from google.protobuf.duration_pb2 import Duration

from metaparticle.sync.v1 import types_pb2

DEFAULT_ADDRESS = "127.0.0.1:13131"
"""Where the sidecar listens unless told otherwise."""


def address_or_default(address: str | None) -> str:
    return address or os.environ.get("MSYNC_ADDRESS") or DEFAULT_ADDRESS


def default_name(*variables: str) -> str:
    """The first of the environment variables that is set, else host/pid."""
    for variable in variables:
        value = os.environ.get(variable)
        if value:
            return value
    return f"{socket.gethostname()}/{os.getpid()}"


def to_duration(seconds: float | None) -> Duration | None:
    if seconds is None:
        return None
    if seconds < 0:
        raise ValueError(f"durations must not be negative, got {seconds} s")
    whole = int(seconds)
    return Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


def from_duration(duration: Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


class SyncError(Exception):
    """A call the sidecar refused or could not serve.

    `code` is the gRPC status code; `field` names the request field at fault
    for INVALID_ARGUMENT.
    """

    def __init__(self, code: grpc.StatusCode, details: str, field: str | None = None) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.field = field

    @classmethod
    def from_rpc_error(cls, error: grpc.RpcError, trailers: Iterable[tuple[str, str | bytes]] | None) -> SyncError:
        # grpc.RpcError is also a grpc.Call; typeshed does not say so.
        call: grpc.Call = error  # type: ignore[assignment]
        field = next((str(value) for key, value in trailers or () if key == "field"), None)
        return cls(call.code(), call.details() or "", field)


def sync_error(error: grpc.RpcError) -> SyncError:
    """A failed blocking call as a SyncError, with its `field` trailer."""
    call: grpc.Call = error  # type: ignore[assignment]
    return SyncError.from_rpc_error(error, call.trailing_metadata())


class LostError(Exception):
    """Why a lock or a term of leadership ended.

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
