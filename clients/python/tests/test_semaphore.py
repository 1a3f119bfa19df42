"""Semaphores, blocking and asyncio, against a real sidecar: N holds at once,
a waiter served on a release, the holders when none is free, renew and
release by hold, PERMITS_MISMATCH as its own exception, and the asyncio
permit's own deadline on a frozen sidecar. (The blocking permit's is tested
beside the lock's, which test_lock.py and test_frozen_sidecar.py parametrize
over both.)"""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
import pytest

from metaparticle_sync import (
    AsyncPermit,
    InvalidArgument,
    LockTimeout,
    NoPermitFree,
    NotHeld,
    Permit,
    PermitsMismatch,
    SemaphoreInfo,
    SyncError,
)

from .conftest import Daemon


def holder_names(info: SemaphoreInfo | NoPermitFree) -> list[str]:
    return sorted(h.holder for h in info.holders)


def test_semaphore_grants_n_permits_and_a_waiter_gets_one_on_release(daemon: Daemon) -> None:
    client = daemon.client()
    first = client.acquire_permit("export", 2, holder="first")
    with client.acquire_permit("export", 2, holder="second") as second:
        for permit in (first, second):
            assert permit.token > 0 and permit.hold_id and permit.permits == 2 and permit.valid_for > 0
            assert permit.held and not permit.lost.is_set() and permit.error is None
        assert (first.holder, second.holder) == ("first", "second")
        assert first.hold_id != second.hold_id and second.token > first.token

        with pytest.raises(LockTimeout) as timed_out:
            client.acquire_permit("export", 2, wait_timeout=0)
        assert timed_out.value.reason == "WAIT_TIMEOUT" and isinstance(timed_out.value, TimeoutError)

        third: list[Permit] = []
        waiter = threading.Thread(target=lambda: third.append(client.acquire_permit("export", 2, holder="third")))
        waiter.start()
        waiter.join(0.2)
        assert not third, "a third holder got a permit while both were held"

        first.release()
        # The sidecar answered ReleasePermit: the permit was given back, with no poll.
        assert first.token not in [h.token for h in client.get_semaphore("export", fresh=True).holders]
        assert not first.held and not first.lost.is_set() and first.error is None
        waiter.join(10)
        assert third, "the waiter did not get the permit after the release"
        assert third[0].token > second.token and third[0].holder == "third"
        info = client.get_semaphore("export", fresh=True)
        assert info.permits == 2 and holder_names(info) == ["second", "third"] and info.token == third[0].token
        # Releasing a stream's hold ends the stream without a loss.
        time.sleep(0.3)
        assert not first.lost.is_set() and first.error is None
        first.release()  # safe to repeat
        third[0].release()


def test_try_acquire_permit_lists_holders_when_full_and_renews_and_releases_by_hold(daemon: Daemon) -> None:
    client = daemon.client()
    a = client.try_acquire_permit("report", 2, holder="cron-a", lease_duration=5)
    b = client.try_acquire_permit("report", 2, holder="cron-b", lease_duration=5)
    assert a.hold_id and a.hold_id != b.hold_id and b.token > a.token and a.permits == 2 and a.valid_for > 0

    with pytest.raises(NoPermitFree) as full:
        client.try_acquire_permit("report", 2, holder="cron-c")
    assert holder_names(full.value) == ["cron-a", "cron-b"]
    assert {h.holder: h.token for h in full.value.holders} == {"cron-a": a.token, "cron-b": b.token}
    assert all(h.remaining > 0 for h in full.value.holders)

    before = a.valid_for
    valid_for = a.renew(lease_duration=10)
    assert valid_for >= before + 1 and a.valid_for >= before + 1, f"a 10 s lease instead of 5 s: {before} -> {valid_for}"
    a.release()
    with pytest.raises(NotHeld) as refused:
        a.release()
    assert refused.value.field == "hold_id" and refused.value.reason == "NOT_HELD"
    with pytest.raises(NotHeld):
        a.renew()

    with client.try_acquire_permit("report", 2, holder="cron-c") as c:
        info = client.get_semaphore("report", fresh=True)
        assert info.permits == 2 and holder_names(info) == ["cron-b", "cron-c"] and info.token == c.token
    b.release()

    never = client.get_semaphore("never-used")
    assert (never.permits, never.holders, never.token) == (0, (), 0)


def test_permits_mismatch_is_its_own_exception(daemon: Daemon) -> None:
    client = daemon.client()
    with client.try_acquire_permit("export", 3):
        for call in (lambda: client.try_acquire_permit("export", 5), lambda: client.acquire_permit("export", 5)):
            with pytest.raises(PermitsMismatch) as refused:
                call()
            assert isinstance(refused.value, SyncError) and not isinstance(refused.value, NotHeld)
            assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
            assert (refused.value.reason, refused.value.field) == ("PERMITS_MISMATCH", "permits")
        info = client.get_semaphore("export", fresh=True)
        assert info.permits == 3 and len(info.holders) == 1, "a refused call changed the semaphore"
    for permits in (0, 33, 1 << 40):
        with pytest.raises(InvalidArgument) as bad:
            client.acquire_permit("other", permits)
        assert bad.value.field == "permits"


def test_async_semaphore_mirrors_the_blocking_one(daemon: Daemon) -> None:
    async def scenario() -> None:
        async with daemon.async_client() as client:
            first = await client.acquire_permit("export", 2, holder="first")
            second = await client.acquire_permit("export", 2, holder="second")
            assert second.token > first.token and first.hold_id != second.hold_id and first.permits == 2
            with pytest.raises(LockTimeout):
                await client.acquire_permit("export", 2, wait_timeout=0)
            with pytest.raises(NoPermitFree) as full:
                await client.try_acquire_permit("export", 2)
            assert holder_names(full.value) == ["first", "second"]

            waiter = asyncio.create_task(client.acquire_permit("export", 2, holder="third"))
            await asyncio.sleep(0.2)
            assert not waiter.done(), "a third holder got a permit while both were held"
            await first.release()
            assert first.token not in [h.token for h in (await client.get_semaphore("export", fresh=True)).holders]
            assert not first.held and not first.lost.is_set() and first.error is None
            third: AsyncPermit = await asyncio.wait_for(waiter, 10)
            async with third, second:
                assert third.token > second.token
                info = await client.get_semaphore("export", fresh=True)
                assert holder_names(info) == ["second", "third"]

            async with await client.try_acquire_permit("leased", 2, lease_duration=5) as lease:
                assert await lease.renew() > 0
                with pytest.raises(PermitsMismatch):
                    await client.try_acquire_permit("leased", 1)
            with pytest.raises(NotHeld):
                await lease.renew()

    asyncio.run(scenario())


def test_async_permit_lost_when_the_sidecar_freezes(short_lease_daemon: Daemon) -> None:
    async def scenario() -> None:
        async with short_lease_daemon.async_client() as client:
            permit = await client.acquire_permit("frozen", 2)
            short_lease_daemon.freeze()
            stopped = time.monotonic()
            try:
                await asyncio.wait_for(permit.lost.wait(), 5)
                waited = time.monotonic() - stopped
            finally:
                short_lease_daemon.thaw()
            assert permit.error is not None and permit.error.reason == "heartbeat-timeout"
            assert waited <= 2, f"lost after {waited:.2f} s, later than the 2 s lease"
            assert permit.valid_for == 0
            await permit.release()  # a lost permit: returns at once

    asyncio.run(scenario())
