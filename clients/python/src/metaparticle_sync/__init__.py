"""Python client of the metaparticle-sync sidecar: distributed locks with
fencing tokens and leader election, over gRPC to a daemon on loopback, with a
blocking client (`Client`) and an asyncio one (`AsyncClient`) offering the same calls."""

from ._common import DEFAULT_ADDRESS, CampaignEvent, Deposed, Elected, Leader, LeaderChanged, LockInfo, LostError, SyncError
from .aio_lock import AsyncLease, AsyncLock
from .campaign import Campaign
from .election import AsyncCampaign, AsyncClient
from .lock import Client, Lease, Lock

__all__ = [
    "DEFAULT_ADDRESS",
    "AsyncCampaign",
    "AsyncClient",
    "AsyncLease",
    "AsyncLock",
    "Campaign",
    "CampaignEvent",
    "Client",
    "Deposed",
    "Elected",
    "Leader",
    "LeaderChanged",
    "Lease",
    "LockInfo",
    "Lock",
    "LostError",
    "SyncError",
]
