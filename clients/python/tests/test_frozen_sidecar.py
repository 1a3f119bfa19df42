"""No call waits forever: with the sidecar frozen (SIGSTOP), every blocking
call returns or raises within its documented deadline, and a campaign that
resigned never reports `elected` again."""

from __future__ import annotations

import queue
import threading
import time
from typing import Callable

import pytest

from metaparticle_sync import Campaign, CampaignEvent, Elected

from .conftest import HOLDS, Daemon

DEFAULT_CALL_TIMEOUT = 10.0  # the documented default, restated so that a changed default is a changed test
SLACK = 3.0  # a slow, shared machine


def outcome_within(seconds: float, call: Callable[[], object]) -> tuple[float, BaseException | None]:
    """Runs `call` on a thread; (seconds it took, what it raised). Fails if it is still running after `seconds`."""
    result: list[BaseException | None] = []
    started = time.monotonic()

    def run() -> None:
        try:
            call()
            result.append(None)
        except BaseException as error:  # noqa: BLE001 - reported to the test
            result.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still waiting after {seconds:.1f} s on a frozen sidecar"
    return time.monotonic() - started, result[0]


def next_event(campaign: Campaign, kind: type[CampaignEvent], within: float = 10) -> CampaignEvent:
    events: queue.Queue[CampaignEvent | None] = queue.Queue()

    def find() -> None:
        for event in campaign:
            if isinstance(event, kind):
                events.put(event)
                return
        events.put(None)

    threading.Thread(target=find, daemon=True).start()
    event = events.get(timeout=within)
    assert event is not None, f"the campaign ended before {kind.__name__}"
    return event


def test_every_call_is_bounded_by_the_default_deadline_on_a_frozen_sidecar(short_lease_daemon: Daemon) -> None:
    client = short_lease_daemon.client()
    lease = client.try_lock("leased", holder="a", lease_duration=30)
    assert lease is not None
    other = client.try_lock("leased-too", holder="a", lease_duration=30)
    assert other is not None
    permit_lease = client.try_acquire_permit("leased-permits", 2, holder="a", lease_duration=30)
    other_permit = client.try_acquire_permit("leased-permits", 2, holder="a", lease_duration=30)
    rw_lease = client.try_acquire_rwlock("leased-rw", "shared", holder="a", lease_duration=30)
    other_rw = client.try_acquire_rwlock("leased-rw", "shared", holder="a", lease_duration=30)
    campaign = client.campaign("lead", candidate="a", lease_duration=30)
    next_event(campaign, Elected)
    client.get_lock("leased")  # the connection is up before the freeze

    short_lease_daemon.freeze()
    calls: dict[str, Callable[[], object]] = {
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
    results: dict[str, tuple[float, BaseException | None]] = {}
    threads = [
        threading.Thread(target=lambda name=name, call=call: results.__setitem__(name, outcome_within(DEFAULT_CALL_TIMEOUT + SLACK, call)))
        for name, call in calls.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEFAULT_CALL_TIMEOUT + 2 * SLACK)
    short_lease_daemon.thaw()
    hung = sorted(set(calls) - set(results))
    assert not hung, f"on a frozen sidecar these calls were still waiting after {DEFAULT_CALL_TIMEOUT + SLACK} s: {hung}"
    for name, (took, error) in results.items():
        assert isinstance(error, TimeoutError), f"{name}: expected a TimeoutError, got {error!r}"
        assert took >= DEFAULT_CALL_TIMEOUT - 0.5, f"{name} gave up after {took:.2f} s, before its 10 s default"
    campaign.close()


def test_a_call_with_a_timeout_raises_deadline_exceeded_on_a_frozen_sidecar(daemon: Daemon) -> None:
    from metaparticle_sync import DeadlineExceeded, SyncError

    client = daemon.client()
    client.get_lock("x")
    daemon.freeze()
    took, error = outcome_within(0.5 + SLACK, lambda: client.get_lock("x", timeout=0.5))
    daemon.thaw()
    assert isinstance(error, DeadlineExceeded) and isinstance(error, SyncError) and isinstance(error, TimeoutError), repr(error)
    assert error.code.name == "DEADLINE_EXCEEDED"
    assert 0.4 <= took <= 0.5 + SLACK


@pytest.mark.parametrize("hold", HOLDS)
def test_lock_wait_timeout_holds_on_the_clients_own_clock_when_the_sidecar_is_frozen(daemon: Daemon, hold: str) -> None:
    from metaparticle_sync import LockTimeout

    client = daemon.client()
    client.get_lock("x")
    daemon.freeze()
    took, error = outcome_within(2 + 1 + SLACK, lambda: HOLDS[hold](client, "waited", None))
    daemon.thaw()
    assert isinstance(error, LockTimeout) and isinstance(error, TimeoutError), repr(error)
    assert error.code.name == "DEADLINE_EXCEEDED"
    assert took >= 2


@pytest.mark.parametrize("hold", HOLDS)
def test_release_of_a_held_lock_returns_once_its_promise_ran_out_on_a_frozen_sidecar(short_lease_daemon: Daemon, hold: str) -> None:
    lock = HOLDS[hold](short_lease_daemon.client(), "held", 2)
    short_lease_daemon.freeze()
    took, error = outcome_within(2 + SLACK, lock.release)
    short_lease_daemon.thaw()
    assert error is None, repr(error)
    assert not lock.held


@pytest.mark.parametrize("hold", HOLDS)
def test_release_of_a_held_lock_raises_deadline_exceeded_within_its_timeout_on_a_frozen_sidecar(daemon: Daemon, hold: str) -> None:
    from metaparticle_sync import DeadlineExceeded

    lock = HOLDS[hold](daemon.client(), "held", 30)
    daemon.freeze()
    took, error = outcome_within(0.5 + SLACK, lambda: lock.release(timeout=0.5))
    daemon.thaw()
    assert isinstance(error, DeadlineExceeded), repr(error)
    assert not lock.held and not lock.lost.is_set(), "a release that timed out is still not a loss"


def test_resign_on_a_frozen_sidecar_returns_and_the_campaign_is_never_elected_again(short_lease_daemon: Daemon) -> None:
    """Resign after the heartbeat deadline passed: the campaign had already
    deposed itself and joined again on a new stream."""
    client = short_lease_daemon.client()
    campaign = client.campaign("ghost", candidate="a", lease_duration=2)
    first = next_event(campaign, Elected)
    assert isinstance(first, Elected)
    short_lease_daemon.freeze()
    assert isinstance(first.done, threading.Event)
    assert first.done.wait(2 + SLACK), "the term did not end on its own deadline"
    took, error = outcome_within(DEFAULT_CALL_TIMEOUT + SLACK, campaign.resign)
    short_lease_daemon.thaw()
    events = drain(campaign, 4)
    assert not [e for e in events if isinstance(e, Elected)], f"elected after resign: {events}"
    assert error is None or isinstance(error, TimeoutError), repr(error)


def test_resign_just_after_the_sidecar_froze_never_reports_elected_again(short_lease_daemon: Daemon) -> None:
    client = short_lease_daemon.client()
    campaign = client.campaign("ghost-now", candidate="a", lease_duration=2)
    first = next_event(campaign, Elected)
    assert isinstance(first, Elected)
    short_lease_daemon.freeze()
    took, error = outcome_within(DEFAULT_CALL_TIMEOUT + SLACK, campaign.resign)
    assert first.done.is_set(), "resign returned while the term still runs"
    short_lease_daemon.thaw()
    events = drain(campaign, 4)
    assert not [e for e in events if isinstance(e, Elected)], f"elected after resign: {events}"
    assert error is None, repr(error)


def drain(campaign: Campaign, seconds: float) -> list[CampaignEvent]:
    """The campaign's events for `seconds`, or until it ends."""
    events: list[CampaignEvent] = []

    def read() -> None:
        for event in campaign:
            events.append(event)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(seconds)
    return list(events)


def test_observe_notices_a_frozen_sidecar_by_keepalive(daemon: Daemon) -> None:
    from metaparticle_sync import Unavailable

    client = daemon.client()
    leaders = client.observe("watched")
    next(leaders)
    daemon.freeze()
    # Pings every 10 s, each answered within 5 s, or the connection counts as dead.
    took, error = outcome_within(10 + 5 + 2 * SLACK, lambda: next(leaders))
    daemon.thaw()
    assert isinstance(error, Unavailable), repr(error)
