from __future__ import annotations

import asyncio
from typing import Callable

import grpc
import pytest

from metaparticle_sync import AsyncCampaign, CampaignEvent, Deposed, Elected, Leader, LeaderChanged, SyncError

from .conftest import Daemon


async def next_event(campaign: AsyncCampaign, kind: type[CampaignEvent]) -> CampaignEvent:
    async def find() -> CampaignEvent:
        async for event in campaign:
            if isinstance(event, kind):
                return event
        raise AssertionError(f"campaign {campaign.candidate} ended before {kind.__name__}")

    return await asyncio.wait_for(find(), 10)


def test_campaign_resign_and_observe(daemon: Daemon) -> None:
    async def scenario() -> None:
        async with daemon.async_client() as client:
            observed: asyncio.Queue[Leader] = asyncio.Queue()

            async def observe() -> None:
                async for leader in client.observe("scheduler"):
                    observed.put_nowait(leader)

            observer = asyncio.create_task(observe())

            async def leader_where(want: Callable[[Leader], bool]) -> Leader:
                while not want(leader := await asyncio.wait_for(observed.get(), 10)):
                    pass
                return leader

            assert (await leader_where(lambda _: True)).leader == "", "nobody campaigned yet"

            async with client.campaign("scheduler", candidate="alpha", value="alpha:1") as alpha:
                elected = await next_event(alpha, Elected)
                assert isinstance(elected, Elected)
                await leader_where(lambda l: l == Leader("alpha", "alpha:1", elected.term))

                async with client.campaign("scheduler", candidate="beta", value="beta:1") as beta:
                    changed = await next_event(beta, LeaderChanged)
                    assert isinstance(changed, LeaderChanged) and changed.leader == "alpha"

                    await alpha.proclaim("alpha:2")
                    await leader_where(lambda l: l.value == "alpha:2")

                    await alpha.resign()
                    assert elected.done.is_set(), "the resigned term's done event is not set"
                    deposed = await next_event(alpha, Deposed)
                    assert isinstance(deposed, Deposed) and deposed.reason == "released"
                    again = await next_event(beta, Elected)
                    assert again.term > elected.term, "terms must grow"
                    await leader_where(lambda l: l.leader == "beta" and l.term == again.term)

                    rest = [event async for event in alpha]  # ends, without an error
                    assert not any(isinstance(event, Elected) for event in rest)
                    with pytest.raises(SyncError) as refused:
                        await alpha.proclaim("late")
                    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION

            observer.cancel()

    asyncio.run(scenario())


def test_campaign_with_bad_input_ends_with_invalid_argument(daemon: Daemon) -> None:
    async def scenario() -> None:
        async with daemon.async_client() as client:
            async with client.campaign("scheduler", candidate="a\nb") as campaign:
                with pytest.raises(SyncError) as refused:
                    async for _ in campaign:
                        pass
                assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
                assert refused.value.field == "candidate"

    asyncio.run(scenario())
