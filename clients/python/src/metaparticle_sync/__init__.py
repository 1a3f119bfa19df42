"""Python client of the metaparticle-sync sidecar: distributed locks with
fencing tokens (`Client.lock`, blocking) and leader election
(`AsyncClient.campaign`, asyncio), over gRPC to a daemon on loopback."""

from ._common import DEFAULT_ADDRESS, LostError, SyncError
from .election import AsyncClient, Campaign, CampaignEvent, Deposed, Elected, Leader, LeaderChanged
from .lock import Client, Lock

__all__ = [
    "DEFAULT_ADDRESS",
    "AsyncClient",
    "Campaign",
    "CampaignEvent",
    "Client",
    "Deposed",
    "Elected",
    "Leader",
    "LeaderChanged",
    "Lock",
    "LostError",
    "SyncError",
]
