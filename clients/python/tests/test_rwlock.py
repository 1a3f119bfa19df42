"""Read-write locks, blocking and asyncio, against a real sidecar: readers
share, a writer waits for them and holds alone with a greater token that later
readers report, a reader asking after a waiting writer waits behind it, the
lock's state when a try is refused, renew and release by hold (two shared
holds may share a token), bad input, and the asyncio hold's own deadline on a
frozen sidecar. (The blocking hold's deadline and every call's bound on a
frozen sidecar are tested beside the lock's, which test_lock.py and
test_frozen_sidecar*.py parametrize over locks, permits and RW holds.)"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from metaparticle_sync import (
    AsyncRWLock,
    InvalidArgument,
    LockTimeout,
    NotHeld,
    RWLock,
    RWLockBusy,
    SyncError,
)

from .conftest import Daemon

WAIT = 10.0
"""Every wait for a hold in these tests: a client that wrongly waits fails in seconds, not after the 5 min default."""


def test_readers_share_and_a_writer_waits_for_all_of_them_then_holds_alone(daemon: Daemon) -> None:
    client = daemon.client()
    first = client.acquire_rwlock("catalog", "shared", holder="r1", wait_timeout=WAIT)
    second = client.acquire_rwlock("catalog", "shared", holder="r2", wait_timeout=WAIT)
    for reader in (first, second):
        assert reader.mode == "shared" and reader.token == 0, "no writer yet: a reader's token is 0"
        assert reader.hold_id and reader.held and reader.valid_for > 0 and not reader.lost.is_set()
    assert first.hold_id != second.hold_id, "two shared holds share a token, never a hold id"
    info = client.get_rwlock("catalog", fresh=True)
    assert (info.held, info.mode, info.holder, info.token, info.reader_count) == (True, "shared", "", 0, 2)

    with pytest.raises(LockTimeout) as timed_out:
        client.acquire_rwlock("catalog", "exclusive", wait_timeout=0)
    assert timed_out.value.reason == "WAIT_TIMEOUT" and isinstance(timed_out.value, TimeoutError)

    writer: list[RWLock] = []
    waiting = threading.Thread(target=lambda: writer.append(client.acquire_rwlock("catalog", holder="w", wait_timeout=WAIT)))
    waiting.start()
    first.release()
    assert client.get_rwlock("catalog", fresh=True).reader_count == 1, "release returned before the sidecar released"
    waiting.join(0.3)
    assert not writer, "the writer got the lock while a reader still held it"
    second.release()
    waiting.join(10)
    assert writer, "the writer did not get the lock once both readers were gone"
    w = writer[0]
    assert w.mode == "exclusive" and w.token > 0 and w.holder == "w"
    info = client.get_rwlock("catalog", fresh=True)
    assert (info.mode, info.holder, info.token, info.readers) == ("exclusive", "w", w.token, ())

    late: list[RWLock] = []
    reader_waits = threading.Thread(
        target=lambda: late.append(client.acquire_rwlock("catalog", "shared", holder="late", wait_timeout=WAIT))
    )
    reader_waits.start()
    reader_waits.join(0.3)
    assert not late, "a reader got the lock while the writer held it"
    w.release()
    reader_waits.join(10)
    assert late and late[0].token == w.token, "a reader reports the last writer's token"
    with late[0]:
        pass
    with client.acquire_rwlock("catalog", "exclusive", wait_timeout=WAIT) as next_writer:
        assert next_writer.token > w.token
    # Releases are not losses.
    time.sleep(0.3)
    assert not any(hold.lost.is_set() or hold.error for hold in (first, second, w, late[0]))


def test_a_reader_asking_after_a_waiting_writer_waits_behind_it(daemon: Daemon) -> None:
    client = daemon.client()
    reader = client.acquire_rwlock("queue", "shared", holder="r1", wait_timeout=WAIT)
    writer: list[RWLock] = []
    waiting = threading.Thread(target=lambda: writer.append(client.acquire_rwlock("queue", "exclusive", holder="w", wait_timeout=WAIT)))
    waiting.start()
    deadline = time.monotonic() + 5
    while not client.get_rwlock("queue").waiting_daemons and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get_rwlock("queue").waiting_daemons, "the writer never showed as waiting"
    with pytest.raises(LockTimeout):
        client.acquire_rwlock("queue", "shared", holder="r2", wait_timeout=0)
    with pytest.raises(RWLockBusy):
        client.try_acquire_rwlock("queue", "shared", holder="r3")
    reader.release()
    waiting.join(10)
    assert writer and writer[0].mode == "exclusive"
    writer[0].release()


def test_try_acquire_rwlock_reports_the_state_and_renews_and_releases_by_hold(daemon: Daemon) -> None:
    client = daemon.client()
    with client.try_acquire_rwlock("report", "exclusive", holder="w", lease_duration=5) as w:
        assert w.mode == "exclusive" and w.token > 0 and w.valid_for > 0
        with pytest.raises(RWLockBusy) as busy:
            client.try_acquire_rwlock("report", "shared", holder="r")
        state = busy.value.state
        assert (state.held, state.mode, state.holder, state.token) == (True, "exclusive", "w", w.token)
        assert state.remaining > 0 and not isinstance(busy.value, SyncError)

    a = client.try_acquire_rwlock("report", "shared", holder="r", lease_duration=5)
    b = client.try_acquire_rwlock("report", "shared", holder="r", lease_duration=5)
    assert a.token == b.token == w.token and a.hold_id != b.hold_id
    with pytest.raises(RWLockBusy) as busy:
        client.try_acquire_rwlock("report", holder="w2")  # exclusive unless told
    assert busy.value.state.mode == "shared" and busy.value.state.reader_count == 2
    assert [seat.readers for seat in busy.value.state.readers] == [2] and busy.value.state.readers[0].holder == "r"

    before = a.valid_for
    assert a.renew(lease_duration=10) >= before + 1, "a 10 s lease instead of 5 s"
    a.release()
    assert client.get_rwlock("report", fresh=True).reader_count == 1
    with pytest.raises(NotHeld) as refused:
        a.renew()
    assert (refused.value.field, refused.value.reason) == ("hold_id", "NOT_HELD")
    with pytest.raises(NotHeld):
        a.release()
    assert b.renew() > 0, "renewing one shared hold by its id must not touch the other"
    b.release()

    never = client.get_rwlock("never-used")
    assert (never.held, never.mode, never.token, never.readers, never.waiting_daemons) == (False, "", 0, (), ())


def test_bad_input(daemon: Daemon) -> None:
    client = daemon.client()
    for call in (
        lambda: client.acquire_rwlock("catalog", "read"),  # type: ignore[arg-type]
        lambda: client.try_acquire_rwlock("catalog", "Shared"),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValueError, match='mode must be "shared" or "exclusive"'):
            call()
    assert not client.get_rwlock("catalog", fresh=True).held, "a refused mode was sent"
    with pytest.raises(InvalidArgument) as bad:
        client.acquire_rwlock("Not A Name", "shared")
    assert bad.value.field == "name"
    with pytest.raises(InvalidArgument) as bad:
        client.try_acquire_rwlock("fine", lease_duration=1.5)
    assert bad.value.field == "lease_duration"


def test_async_rwlock_mirrors_the_blocking_one(daemon: Daemon) -> None:
    async def scenario() -> None:
        async with daemon.async_client() as client:
            r1 = await client.acquire_rwlock("catalog", "shared", holder="r1", wait_timeout=WAIT)
            r2 = await client.acquire_rwlock("catalog", "shared", holder="r2", wait_timeout=WAIT)
            assert r1.mode == "shared" and r1.token == r2.token == 0 and r1.hold_id != r2.hold_id
            assert (await client.get_rwlock("catalog", fresh=True)).reader_count == 2
            with pytest.raises(RWLockBusy) as busy:
                await client.try_acquire_rwlock("catalog")
            assert busy.value.state.mode == "shared"

            writer = asyncio.create_task(client.acquire_rwlock("catalog", holder="w", wait_timeout=WAIT))
            await r1.release()
            await asyncio.sleep(0.3)
            assert not writer.done(), "the writer got the lock while a reader still held it"
            await r2.release()
            w: AsyncRWLock = await asyncio.wait_for(writer, 10)
            async with w:
                assert w.mode == "exclusive" and w.token > 0
                info = await client.get_rwlock("catalog", fresh=True)
                assert (info.mode, info.holder, info.token) == ("exclusive", "w", w.token)
            assert not w.held and not w.lost.is_set() and w.error is None

            async with await client.try_acquire_rwlock("catalog", "shared", lease_duration=5) as lease:
                assert lease.token == w.token and await lease.renew() > 0
            with pytest.raises(NotHeld):
                await lease.renew()
            with pytest.raises(ValueError):
                await client.acquire_rwlock("catalog", "write")  # type: ignore[arg-type]

    asyncio.run(scenario())


def test_async_rwlock_lost_when_the_sidecar_freezes(short_lease_daemon: Daemon) -> None:
    async def scenario() -> None:
        async with short_lease_daemon.async_client() as client:
            hold = await client.acquire_rwlock("frozen", "shared", wait_timeout=WAIT)
            short_lease_daemon.freeze()
            stopped = time.monotonic()
            try:
                await asyncio.wait_for(hold.lost.wait(), 5)
                waited = time.monotonic() - stopped
            finally:
                short_lease_daemon.thaw()
            assert hold.error is not None and hold.error.reason == "heartbeat-timeout"
            assert waited <= 2, f"lost after {waited:.2f} s, later than the 2 s lease"
            assert hold.valid_for == 0
            await hold.release()  # a lost hold: returns at once

    asyncio.run(scenario())
