from __future__ import annotations

import threading
import time

import grpc
import pytest

from metaparticle_sync import DeadlineExceeded, InvalidArgument, Lock, LockTimeout, NotHeld, SyncError, Unavailable

from .conftest import HOLDS, Daemon


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


@pytest.mark.parametrize("hold", HOLDS)
def test_lock_lost_when_the_sidecar_freezes(short_lease_daemon: Daemon, hold: str) -> None:
    with HOLDS[hold](short_lease_daemon.client(), "frozen", None) as lock:
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
        assert lock.valid_for == 0 and not lock.held


def test_bad_input_gets_invalid_argument_naming_the_field(daemon: Daemon) -> None:
    # The field comes from the standard google.rpc.BadRequest detail, read with grpcio-status.
    with pytest.raises(InvalidArgument) as refused:
        daemon.client().lock("Not_A_DNS_Name")
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.field == "name"
    assert refused.value.reason == "INVALID_ARGUMENT"
    with pytest.raises(InvalidArgument) as refused:
        daemon.client().try_lock("fine", lease_duration=1.5)
    assert refused.value.field == "lease_duration"


def test_each_status_has_its_own_exception_class(daemon: Daemon) -> None:
    for kind in (LockTimeout, DeadlineExceeded, NotHeld, InvalidArgument, Unavailable):
        assert issubclass(kind, SyncError)
    assert issubclass(LockTimeout, TimeoutError) and issubclass(DeadlineExceeded, TimeoutError)

    client = daemon.client()
    with client.lock("busy", holder="first"):
        # A caller catches a wait timeout as the builtin TimeoutError, without importing grpc.
        with pytest.raises(TimeoutError) as timed_out:
            client.lock("busy", wait_timeout=0)
        assert isinstance(timed_out.value, LockTimeout) and timed_out.value.reason == "WAIT_TIMEOUT"
        assert timed_out.value.code.name == "DEADLINE_EXCEEDED"

    lease = client.try_lock("short", lease_duration=1)
    assert lease is not None
    assert lease.lost.wait(3), "the lease did not run out"
    deadline = time.monotonic() + 5
    while (taken := client.try_lock("short", holder="other")) is None and time.monotonic() < deadline:
        time.sleep(0.1)  # lost comes before the lease expires for anyone else
    assert taken is not None, "the lease was not free 5 s after it ran out"
    with pytest.raises(NotHeld) as refused:
        lease.renew()
    assert refused.value.code.name == "FAILED_PRECONDITION"
    with pytest.raises(NotHeld):
        lease.release()
    taken.release()


def test_release_of_a_held_lock_is_acknowledged_and_is_not_a_loss(daemon: Daemon) -> None:
    client = daemon.client()
    lock = client.lock("acked", holder="a")
    lock.release()
    # The sidecar answered Release: the lock is free from then on, with no poll.
    assert not client.get_lock("acked", fresh=True).held
    time.sleep(0.3)  # the sidecar ends the stream after the release: still not a loss
    assert not lock.lost.is_set() and lock.error is None
    lock.release()  # safe to repeat


def test_unavailable_when_no_sidecar_listens() -> None:
    from metaparticle_sync import Client

    with Client("127.0.0.1:1") as client, pytest.raises(Unavailable):
        client.get_lock("nobody", timeout=5)
