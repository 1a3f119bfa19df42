"""The Python conformance driver for the asyncio client (test/conformance/PROTOCOL.md):
performs each command through metaparticle_sync.AsyncClient and reports what it says."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from metaparticle_sync import (
    AsyncCampaign,
    AsyncClient,
    AsyncLease,
    AsyncLock,
    AsyncPermit,
    AsyncPermitLease,
    AsyncRWLease,
    AsyncRWLock,
    NoPermitFree,
    RWLockBusy,
    SyncError,
)

from driver import Unimplemented, error_of, event_of, holders_of, leased, locked, permit_reply, rw_reply, rwlock_state, seconds, waited, write


class Driver:
    def __init__(self) -> None:
        self.clients: dict[str, AsyncClient] = {}
        self.locks: dict[str, AsyncLock | AsyncLease | AsyncPermit | AsyncPermitLease | AsyncRWLock | AsyncRWLease] = {}
        self.campaigns: dict[str, AsyncCampaign] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def client(self, command: dict[str, Any]) -> AsyncClient:
        if command.get("client") not in self.clients:
            raise Unimplemented(f"no client {command.get('client')}")
        return self.clients[command["client"]]

    def watch_loss(self, handle: str, hold: AsyncLock | AsyncPermit | AsyncRWLock) -> None:
        """Reports the hold's `lost` when it is set: only a loss sets it, never a release."""

        async def watch() -> None:
            await hold.lost.wait()
            assert hold.error is not None
            write({"event": "lost", "handle": handle, "reason": hold.error.reason, "message": hold.error.message})

        self.tasks["lost-" + handle] = asyncio.create_task(watch())

    async def perform(self, c: dict[str, Any]) -> dict[str, Any]:
        op = c["op"]
        if op == "connect":
            self.clients[c["as"]] = AsyncClient(c["address"])
            return {}
        if op == "lock":
            lock = await self.client(c).lock(c["name"], **locked(c))
            self.locks[c["as"]] = lock
            self.watch_loss(c["as"], lock)
            return {"token": lock.token, "holder": lock.holder}
        if op == "tryLock":
            lease = await self.client(c).try_lock(c["name"], **leased(c))
            if lease is None:
                return {"acquired": False}
            self.locks[c["as"]] = lease
            return {"acquired": True, "token": lease.token, "validForMs": round(lease.valid_for * 1000)}
        if op == "acquirePermit":
            permit = await self.client(c).acquire_permit(c["name"], c["permits"], **waited(c))
            self.locks[c["as"]] = permit
            self.watch_loss(c["as"], permit)
            return permit_reply(permit)
        if op == "tryAcquirePermit":
            try:
                permit_lease = await self.client(c).try_acquire_permit(c["name"], c["permits"], **leased(c))
            except NoPermitFree as full:
                return {"acquired": False, "holders": holders_of(full.holders)}
            self.locks[c["as"]] = permit_lease
            return {"acquired": True, **permit_reply(permit_lease), "validForMs": round(permit_lease.valid_for * 1000)}
        if op == "getSemaphore":
            semaphore_info = await self.client(c).get_semaphore(c["name"], fresh=bool(c.get("fresh")), timeout=seconds(c, "timeoutMs"))
            return {"permits": semaphore_info.permits, "token": semaphore_info.token, "holders": holders_of(semaphore_info.holders)}
        if op == "acquireRW":
            rw = await self.client(c).acquire_rwlock(c["name"], c["mode"], **waited(c))
            self.locks[c["as"]] = rw
            self.watch_loss(c["as"], rw)
            return rw_reply(rw)
        if op == "tryAcquireRW":
            try:
                rw_lease = await self.client(c).try_acquire_rwlock(c["name"], c["mode"], **leased(c))
            except RWLockBusy as busy:
                return {"acquired": False, "mode": busy.state.mode}
            self.locks[c["as"]] = rw_lease
            return {"acquired": True, **rw_reply(rw_lease), "validForMs": round(rw_lease.valid_for * 1000)}
        if op == "getRWLock":
            rw_info = await self.client(c).get_rwlock(c["name"], fresh=bool(c.get("fresh")), timeout=seconds(c, "timeoutMs"))
            return rwlock_state(rw_info)
        if op == "renew":
            held = self.locks.get(c["handle"])
            if not isinstance(held, (AsyncLease, AsyncPermitLease, AsyncRWLease)):
                raise Unimplemented(f"no lease {c['handle']}")
            return {"validForMs": round(await held.renew(seconds(c, "leaseDurationMs"), timeout=seconds(c, "timeoutMs")) * 1000)}
        if op == "getLock":
            info = await self.client(c).get_lock(c["name"], fresh=bool(c.get("fresh")), timeout=seconds(c, "timeoutMs"))
            return {"held": info.held, "holder": info.holder, "token": info.token}
        if op == "getLeader":
            leader = await self.client(c).get_leader(c["name"], fresh=bool(c.get("fresh")), timeout=seconds(c, "timeoutMs"))
            return {"leader": leader.leader, "value": leader.value, "term": leader.term}
        if op == "campaign":
            campaign = self.client(c).campaign(
                c["name"], candidate=c.get("candidate"), value=c.get("value") or "", lease_duration=seconds(c, "leaseDurationMs")
            )
            handle = c["as"]
            self.campaigns[handle] = campaign

            async def follow() -> None:
                try:
                    async for event in campaign:
                        write(event_of(handle, event))
                    write({"event": "campaign-ended", "handle": handle})
                except SyncError as error:
                    write({"event": "campaign-ended", "handle": handle, "error": error_of(error)})

            self.tasks[handle] = asyncio.create_task(follow())
            return {}
        if op == "proclaim":
            await self.campaigns[c["handle"]].proclaim(c["value"], timeout=seconds(c, "timeoutMs"))
            return {}
        if op == "resign":
            await self.campaigns[c["handle"]].resign(timeout=seconds(c, "timeoutMs"))
            return {}
        if op == "observe":
            handle = c["as"]
            client = self.client(c)

            async def observe() -> None:
                try:
                    async for leader in client.observe(c["name"]):
                        write({"event": "leader", "handle": handle, "leader": leader.leader, "value": leader.value, "term": leader.term})
                    write({"event": "observe-ended", "handle": handle})
                except SyncError as error:
                    write({"event": "observe-ended", "handle": handle, "error": error_of(error)})

            self.tasks[handle] = asyncio.create_task(observe())
            return {}
        if op in ("release", "close"):
            handle = c["handle"]
            if handle in self.locks:
                await self.locks[handle].release(timeout=seconds(c, "timeoutMs"))
            elif op == "close" and handle in self.campaigns:
                await self.campaigns[handle].close()
            elif op == "close" and handle in self.tasks:
                self.tasks[handle].cancel()
            elif op == "close" and handle in self.clients:
                await self.clients[handle].close()
            else:
                raise Unimplemented(f"no handle {handle} for {op}")
            return {}
        raise Unimplemented(f"unknown op {op}")

    async def close(self) -> None:
        # The driver exits within 10 s of stdin's end, whatever state the sidecar is in.
        for lock in self.locks.values():
            if isinstance(lock, (AsyncLock, AsyncPermit, AsyncRWLock)):
                try:
                    await lock.release(timeout=2)
                except SyncError:
                    pass
        for campaign in self.campaigns.values():
            await campaign.close()
        for task in self.tasks.values():
            task.cancel()
        for client in self.clients.values():
            await client.close()


async def main() -> None:
    write({"event": "ready", "language": "python-asyncio", "client": "metaparticle_sync.AsyncClient"})
    driver = Driver()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        try:
            reply = {"id": command["id"], "ok": True, **await driver.perform(command)}
        except Unimplemented as error:
            reply = {"id": command["id"], "ok": False, "error": {"code": "UNIMPLEMENTED", "field": None, "message": str(error)}}
        except Exception as error:  # reported to the harness, which judges it
            reply = {"id": command["id"], "ok": False, "error": error_of(error)}
        write(reply)
    await driver.close()


if __name__ == "__main__":
    asyncio.run(main())
