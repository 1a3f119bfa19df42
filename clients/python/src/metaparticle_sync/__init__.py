"""Python client of the metaparticle-sync sidecar: distributed locks,
counting semaphores and read-write locks with fencing tokens, and leader election, over gRPC to a
daemon on loopback, with a blocking client (`Client`) and an asyncio one
(`AsyncClient`) offering the same calls.

Every call that talks to the sidecar takes `timeout=` (seconds); the errors
are the exception classes below, which a caller catches without importing grpc."""

from ._common import (
    DEFAULT_ADDRESS,
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_WAIT_TIMEOUT,
    KEEPALIVE_TIME,
    KEEPALIVE_TIMEOUT,
    WAIT_GRACE,
    CampaignEvent,
    Deposed,
    Elected,
    Leader,
    LeaderChanged,
    LockInfo,
    LostError,
    PermitHolder,
    ReaderSeat,
    RWLockInfo,
    SemaphoreInfo,
)
from ._errors import (
    DeadlineExceeded,
    InvalidArgument,
    LockTimeout,
    NoPermitFree,
    NotHeld,
    PermitsMismatch,
    RWLockBusy,
    SyncError,
    Unavailable,
)
from .aio_lock import AsyncLease, AsyncLock
from .aio_rwlock import AsyncRWLease, AsyncRWLock
from .aio_semaphore import AsyncPermit, AsyncPermitLease
from .campaign import Campaign
from .election import AsyncCampaign, AsyncClient
from .lock import Client, Lease, Lock
from .rwlock import LockMode, RWLease, RWLock
from .semaphore import Permit, PermitLease

__all__ = [
    "DEFAULT_ADDRESS",
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_WAIT_TIMEOUT",
    "KEEPALIVE_TIME",
    "KEEPALIVE_TIMEOUT",
    "WAIT_GRACE",
    "AsyncCampaign",
    "AsyncClient",
    "AsyncLease",
    "AsyncLock",
    "AsyncPermit",
    "AsyncPermitLease",
    "AsyncRWLease",
    "AsyncRWLock",
    "Campaign",
    "CampaignEvent",
    "Client",
    "DeadlineExceeded",
    "Deposed",
    "Elected",
    "InvalidArgument",
    "Leader",
    "LeaderChanged",
    "Lease",
    "LockInfo",
    "Lock",
    "LockMode",
    "LockTimeout",
    "LostError",
    "NoPermitFree",
    "NotHeld",
    "Permit",
    "PermitHolder",
    "PermitLease",
    "PermitsMismatch",
    "RWLease",
    "RWLock",
    "RWLockBusy",
    "RWLockInfo",
    "ReaderSeat",
    "SemaphoreInfo",
    "SyncError",
    "Unavailable",
]
