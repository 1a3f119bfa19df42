"""The asyncio client on a frozen sidecar (SIGSTOP): every call returns or
raises within its documented deadline, and a campaign that resigned never
reports `elected` again."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

import pytest

from metaparticle_sync import AsyncCampaign, AsyncClient, AsyncLock, AsyncPermit, AsyncRWLock, CampaignEvent, Elected, SyncError

from .conftest import Daemon

DEFAULT_CALL_TIMEOUT = 10.0
SLACK = 3.0


async def outcome_within(seconds: float, call: Callable[[], Awaitable[object]]) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        await asyncio.wait_for(call(), seconds)
    except SyncError as error:  # the client's own TimeoutErrors among them
        return time.monotonic() - started, error
    except asyncio.TimeoutError:
        raise AssertionError(f"still waiting after {seconds:.1f} s on a frozen sidecar") from None
    except Exception as error:  # noqa: BLE001 - reported to the test
        return time.monotonic() - started, error
    return time.monotonic() - started, None


async def next_elected(campaign: AsyncCampaign) -> Elected:
    async def find() -> Elected:
        async for event in campaign:
            if isinstance(event, Elected):
                return event
        raise AssertionError("the campaign ended before it was elected")

    return await asyncio.wait_for(find(), 10)


async def drain(campaign: AsyncCampaign, seconds: float) -> list[CampaignEvent]:
    events: list[CampaignEvent] = []

    async def read() -> None:
        async for event in campaign:
            events.append(event)

    try:
        await asyncio.wait_for(read(), seconds)
    except asyncio.TimeoutError:
        pass
    return events


def test_every_async_call_is_bounded_by_the_default_deadline_on_a_frozen_sidecar(short_lease_daemon: Daemon) -> None:
    async def scenario() -> None:
        async with short_lease_daemon.async_client() as client:
            lease = await client.try_lock("leased", holder="a", lease_duration=30)
            other = await client.try_lock("leased-too", holder="a", lease_duration=30)
            assert lease is not None and other is not None
            permit_lease = await client.try_acquire_permit("leased-permits", 2, holder="a", lease_duration=30)
            other_permit = await client.try_acquire_permit("leased-permits", 2, holder="a", lease_duration=30)
            rw_lease = await client.try_acquire_rwlock("leased-rw", "shared", holder="a", lease_duration=30)
            other_rw = await client.try_acquire_rwlock("leased-rw", "shared", holder="a", lease_duration=30)
            campaign = client.campaign("lead", candidate="a", lease_duration=30)
            await next_elected(campaign)
            short_lease_daemon.freeze()
            calls: dict[str, Callable[[], Awaitable[object]]] = {
                "try_lock": lambda: client.try_lock("other", holder="a"),
                "renew": lambda: lease.renew(),
                "release (try_lock)": lambda: other.release(),
                "get_lock": lambda: client.get_lock("leased"),
                "get_leader": lambda: client.get_leader("lead"),
                "proclaim": lambda: campaign.proclaim("v2"),
                "try_acquire_permit": lambda: client.try_acquire_permit("other-permits", 2, holder="a"),
                "renew (try_acquire_permit)": lambda: permit_lease.renew(),
                "release (try_acquire_permit)": lambda: other_permit.release(),
                "get_semaphore": lambda: client.get_semaphore("leased-permits"),
                "try_acquire_rwlock": lambda: client.try_acquire_rwlock("other-rw", holder="a"),
                "renew (try_acquire_rwlock)": lambda: rw_lease.renew(),
                "release (try_acquire_rwlock)": lambda: other_rw.release(),
                "get_rwlock": lambda: client.get_rwlock("leased-rw"),
            }
            try:
                outcomes = await asyncio.gather(*(outcome_within(DEFAULT_CALL_TIMEOUT + SLACK, call) for call in calls.values()))
            finally:
                short_lease_daemon.thaw()
            for name, (took, error) in zip(calls, outcomes):
                assert isinstance(error, TimeoutError), f"{name}: expected a TimeoutError, got {error!r}"
                assert took >= DEFAULT_CALL_TIMEOUT - 0.5, f"{name} gave up after {took:.2f} s, before its 10 s default"
            await campaign.close()

    asyncio.run(scenario())


# A held lock, a held permit and a read-write lock held shared: the same guarantees.
HOLDS: dict[str, Callable[[AsyncClient, str, float | None], Awaitable[AsyncLock | AsyncPermit | AsyncRWLock]]] = {
    "lock": lambda client, name, lease: client.lock(name, lease_duration=lease, wait_timeout=2),
    "permit": lambda client, name, lease: client.acquire_permit(name, 2, lease_duration=lease, wait_timeout=2),
    "rwlock": lambda client, name, lease: client.acquire_rwlock(name, "shared", lease_duration=lease, wait_timeout=2),
}


@pytest.mark.parametrize("hold", HOLDS)
def test_async_lock_wait_timeout_holds_on_the_clients_own_clock_when_the_sidecar_is_frozen(daemon: Daemon, hold: str) -> None:
    from metaparticle_sync import LockTimeout

    async def scenario() -> None:
        async with daemon.async_client() as client:
            await client.get_lock("x")
            daemon.freeze()
            try:
                took, error = await outcome_within(2 + 1 + SLACK, lambda: HOLDS[hold](client, "waited", None))
            finally:
                daemon.thaw()
            assert isinstance(error, LockTimeout), repr(error)
            assert took >= 2

    asyncio.run(scenario())


@pytest.mark.parametrize("hold", HOLDS)
def test_async_release_of_a_held_lock_raises_deadline_exceeded_within_its_timeout_on_a_frozen_sidecar(daemon: Daemon, hold: str) -> None:
    from metaparticle_sync import DeadlineExceeded

    async def scenario() -> None:
        async with daemon.async_client() as client:
            lock = await HOLDS[hold](client, "held", 30)
            daemon.freeze()
            try:
                took, error = await outcome_within(0.5 + SLACK, lambda: lock.release(timeout=0.5))
            finally:
                daemon.thaw()
            assert isinstance(error, DeadlineExceeded), repr(error)
            assert not lock.held and not lock.lost.is_set()

    asyncio.run(scenario())


def test_async_resign_on_a_frozen_sidecar_never_reports_elected_again(short_lease_daemon: Daemon) -> None:
    async def scenario() -> None:
        async with short_lease_daemon.async_client() as client:
            campaign = client.campaign("ghost", candidate="a", lease_duration=2)
            first = await next_elected(campaign)
            short_lease_daemon.freeze()
            assert isinstance(first.done, asyncio.Event)
            await asyncio.wait_for(first.done.wait(), 2 + SLACK)
            try:
                took, error = await outcome_within(DEFAULT_CALL_TIMEOUT + SLACK, campaign.resign)
            finally:
                short_lease_daemon.thaw()
            events = await drain(campaign, 4)
            assert not [e for e in events if isinstance(e, Elected)], f"elected after resign: {events}"
            assert error is None or isinstance(error, TimeoutError), repr(error)
            await campaign.close()

    asyncio.run(scenario())


def test_async_resign_just_after_the_sidecar_froze_never_reports_elected_again(short_lease_daemon: Daemon) -> None:
    async def scenario() -> None:
        async with short_lease_daemon.async_client() as client:
            campaign = client.campaign("ghost-now", candidate="a", lease_duration=2)
            first = await next_elected(campaign)
            short_lease_daemon.freeze()
            try:
                took, error = await outcome_within(DEFAULT_CALL_TIMEOUT + SLACK, campaign.resign)
            finally:
                short_lease_daemon.thaw()
            assert first.done.is_set(), "resign returned while the term still runs"
            events = await drain(campaign, 4)
            assert not [e for e in events if isinstance(e, Elected)], f"elected after resign: {events}"
            assert error is None, repr(error)
            await campaign.close()

    asyncio.run(scenario())
