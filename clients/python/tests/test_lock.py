from __future__ import annotations

import threading
import time

import grpc
import pytest

from metaparticle_sync import Lock, SyncError

from .conftest import Daemon


def test_lock_is_exclusive_and_release_hands_it_over(daemon: Daemon) -> None:
    client = daemon.client()
    with client.lock("job", holder="first") as first:
        assert first.token > 0 and first.holder == "first" and first.valid_for > 0
        assert not first.lost.is_set() and first.error is None

        with pytest.raises(SyncError) as refused:
            client.lock("job", wait_timeout=0)
        assert refused.value.code == grpc.StatusCode.DEADLINE_EXCEEDED

        second: list[Lock] = []
        waiter = threading.Thread(target=lambda: second.append(client.lock("job", holder="second")))
        waiter.start()
        waiter.join(0.2)
        assert not second, "the waiter got the lock while it was held"

    # A normal release is not a loss: `lost` is for stopping work that is still running.
    assert not first.lost.is_set() and first.error is None, f"lost on a normal release: {first.error}"
    assert not first.held
    waiter.join(10)
    assert second, "the waiter did not get the lock after release"
    with second[0] as lock:
        assert lock.token > first.token, "fencing tokens must grow"


def test_lock_lost_when_the_sidecar_freezes(short_lease_daemon: Daemon) -> None:
    with short_lease_daemon.client().lock("frozen") as lock:
        # A stopped daemon sends neither heartbeats nor `lost`: only the
        # client's own deadline can tell the holder to stop.
        short_lease_daemon.freeze()
        stopped = time.monotonic()
        try:
            assert lock.lost.wait(5), "the lock was not reported lost within 5 s of the daemon freezing"
            waited = time.monotonic() - stopped
        finally:
            short_lease_daemon.thaw()
        assert lock.error is not None and lock.error.reason == "heartbeat-timeout"
        assert waited <= 2, f"lost after {waited:.2f} s, later than the 2 s lease"
        assert lock.valid_for == 0


def test_bad_input_gets_invalid_argument_naming_the_field(daemon: Daemon) -> None:
    with pytest.raises(SyncError) as refused:
        daemon.client().lock("Not_A_DNS_Name")
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.field == "name"
