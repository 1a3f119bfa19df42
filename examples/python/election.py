"""Leader election: every copy campaigns; the leader works for a few seconds
and then resigns, so another copy is elected at once. Run two or three."""

import asyncio
import os

from metaparticle_sync import AsyncClient, Deposed, Elected, LeaderChanged


async def main() -> None:
    me = f"python-{os.getpid()}"
    async with AsyncClient() as client:
        async with client.campaign("scheduler", candidate=me, value=f"{me}:8080") as campaign:
            async for event in campaign:
                if isinstance(event, LeaderChanged):
                    print(f"{me} follows {event.leader!r} (term {event.term}, value {event.value!r})", flush=True)
                elif isinstance(event, Deposed):
                    print(f"{me} no longer leads term {event.term}: {event.reason}", flush=True)
                elif isinstance(event, Elected):
                    print(f"{me} leads, term {event.term}", flush=True)
                    try:
                        await asyncio.wait_for(event.done.wait(), 3)  # deposed: the next event says why
                    except asyncio.TimeoutError:
                        # Never followed by Elected, even if the sidecar froze meanwhile.
                        await campaign.resign(timeout=5)


asyncio.run(main())
