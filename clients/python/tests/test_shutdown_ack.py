"""A leader deposed because its sidecar is shutting down ends its campaign
(docs/design.md 3.7): `Deposed("shutdown")`, then the campaign closes its
stream (the acknowledgement the sidecar waits for) and ends with Unavailable,
without campaigning again."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time

import pytest

from metaparticle_sync import CampaignEvent, Deposed, Elected, LeaderChanged, Unavailable

from .conftest import Daemon


def how_it_stopped(daemon: Daemon) -> str:
    """The daemon's last word: whether everything held was given back, or (a
    stream nobody closed) left to expire at its shutdown timeout. With a 60 s
    lease only the client's close lets it give the lease back in time."""
    daemon.process.wait(10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for line in list(daemon.log):
            try:
                message = str(json.loads(line).get("msg", ""))
            except ValueError:
                continue
            if message.startswith("stopped"):
                return message
        time.sleep(0.05)
    raise AssertionError("the daemon logged no 'stopped' line:\n" + "\n".join(daemon.log))


def test_a_campaign_deposed_at_shutdown_ends_with_unavailable(daemon: Daemon) -> None:
    client = daemon.client()
    campaign = client.campaign("ack", candidate="a", lease_duration=60)
    seen: queue.Queue[CampaignEvent | BaseException | None] = queue.Queue()

    def read() -> None:
        try:
            for event in campaign:
                seen.put(event)
            seen.put(None)
        except BaseException as error:  # noqa: BLE001 - reported to the test
            seen.put(error)

    threading.Thread(target=read, daemon=True).start()
    elected = seen.get(timeout=10)
    while isinstance(elected, LeaderChanged):  # nobody led before
        elected = seen.get(timeout=10)
    assert isinstance(elected, Elected), elected
    daemon.process.terminate()
    deposed = seen.get(timeout=10)
    assert isinstance(deposed, Deposed) and deposed.term == elected.term and deposed.reason == "shutdown", deposed
    assert elected.done.is_set()
    end = seen.get(timeout=10)
    assert isinstance(end, Unavailable), end
    assert end.reason == "SHUTTING_DOWN"
    assert how_it_stopped(daemon) == "stopped: everything held was released", "the stream was not closed"
    assert not campaign.leading
    campaign.close()


def test_an_async_campaign_deposed_at_shutdown_ends_with_unavailable(daemon: Daemon) -> None:
    async def scenario() -> None:
        async with daemon.async_client() as client:
            async with client.campaign("ack", candidate="a", lease_duration=60) as campaign:
                loop = asyncio.get_running_loop()
                events = campaign.__aiter__()
                elected = await asyncio.wait_for(events.__anext__(), 10)
                while isinstance(elected, LeaderChanged):  # nobody led before
                    elected = await asyncio.wait_for(events.__anext__(), 10)
                assert isinstance(elected, Elected), elected
                daemon.process.terminate()
                deposed = await asyncio.wait_for(events.__anext__(), 10)
                assert isinstance(deposed, Deposed) and deposed.term == elected.term and deposed.reason == "shutdown", deposed
                assert elected.done.is_set()
                with pytest.raises(Unavailable) as ended:
                    await asyncio.wait_for(events.__anext__(), 10)
                assert ended.value.reason == "SHUTTING_DOWN"
                assert not campaign.leading
                assert await loop.run_in_executor(None, how_it_stopped, daemon) == "stopped: everything held was released"

    asyncio.run(scenario())
