"""The Python conformance driver for the blocking client (test/conformance/PROTOCOL.md):
performs each command through metaparticle_sync.Client and reports what it says."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, Callable, Iterator

from metaparticle_sync import (
    Campaign,
    Client,
    Deposed,
    Elected,
    Lease,
    Leader,
    Lock,
    LockTimeout,
    NoPermitFree,
    NotHeld,
    Permit,
    PermitHolder,
    PermitLease,
    PermitsMismatch,
    RWLease,
    RWLock,
    RWLockBusy,
    RWLockInfo,
    SyncError,
)
from metaparticle_sync.rwlock import RWLockFields
from metaparticle_sync.semaphore import PermitFields

_out = threading.Lock()


def write(message: dict[str, Any]) -> None:
    with _out:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def kind_of(error: SyncError) -> str | None:
    """The protocol's name for the client's exception class, if it is one the protocol names."""
    if isinstance(error, PermitsMismatch):
        return "permits-mismatch"
    if isinstance(error, NotHeld):
        return "not-held"
    if isinstance(error, LockTimeout):
        return "wait-timeout"
    return None


def error_of(error: BaseException) -> dict[str, Any]:
    if isinstance(error, SyncError):
        return {"code": error.code.name, "field": error.field, "kind": kind_of(error), "message": error.details}
    return {"code": "UNKNOWN", "field": None, "kind": None, "message": repr(error)}


def holders_of(holders: tuple[PermitHolder, ...]) -> list[dict[str, Any]]:
    return [{"holder": h.holder, "token": h.token} for h in holders]


def permit_reply(permit: PermitFields) -> dict[str, Any]:
    return {"token": permit.token, "holder": permit.holder, "permits": permit.permits, "holdId": permit.hold_id}


def rw_reply(hold: RWLockFields) -> dict[str, Any]:
    return {"token": hold.token, "holder": hold.holder, "mode": hold.mode, "holdId": hold.hold_id}


def rwlock_state(info: RWLockInfo) -> dict[str, Any]:
    """A read-write lock as `getRWLock` reports it; its `mode` is also a refused `tryAcquireRW`'s."""
    return {"mode": info.mode, "holder": info.holder, "token": info.token, "readers": info.reader_count}


def seconds(command: dict[str, Any], key: str) -> float | None:
    """A duration in milliseconds (`leaseDurationMs`, `timeoutMs`, ...) in seconds; None if absent."""
    value = command.get(key)
    return None if value is None else value / 1000


def leased(command: dict[str, Any]) -> dict[str, Any]:
    """The options of a call that takes a lease, as the wrapper's keyword arguments (None: its default)."""
    return {
        "holder": command.get("holder"),
        "lease_duration": seconds(command, "leaseDurationMs"),
        "timeout": seconds(command, "timeoutMs"),
    }


def waited(command: dict[str, Any]) -> dict[str, Any]:
    """The options of a blocking acquisition: a lease's and `wait_timeout`."""
    return {**leased(command), "wait_timeout": seconds(command, "waitTimeoutMs")}


def locked(command: dict[str, Any]) -> dict[str, Any]:
    """The options of the blocking lock: a blocking acquisition's, and `fair` when the command gives it."""
    return {**waited(command), **({"fair": command["fair"]} if command.get("fair") is not None else {})}


class Unimplemented(Exception):
    pass


def event_of(handle: str, event: object) -> dict[str, Any]:
    if isinstance(event, Elected):
        return {"event": "elected", "handle": handle, "term": event.term}
    if isinstance(event, Deposed):
        reason = "resigned" if event.reason == "released" else event.reason
        return {"event": "deposed", "handle": handle, "term": event.term, "reason": reason, "message": event.message}
    return {"event": "leader-changed", "handle": handle, "leader": event.leader, "value": event.value, "term": event.term}  # type: ignore[attr-defined]


class Driver:
    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.locks: dict[str, Lock | Lease | Permit | PermitLease | RWLock | RWLease] = {}
        self.campaigns: dict[str, Campaign] = {}
        self.observations: dict[str, Iterator[Leader]] = {}

    def client(self, command: dict[str, Any]) -> Client:
        if command.get("client") not in self.clients:
            raise Unimplemented(f"no client {command.get('client')}")
        return self.clients[command["client"]]

    def background(self, target: Callable[[], None]) -> None:
        threading.Thread(target=target, daemon=True).start()

    def watch_loss(self, handle: str, hold: Lock | Permit | RWLock) -> None:
        """Reports the hold's `lost` when it is set: only a loss sets it, never a release."""

        def watch() -> None:
            hold.lost.wait()
            assert hold.error is not None
            write({"event": "lost", "handle": handle, "reason": hold.error.reason, "message": hold.error.message})

        self.background(watch)

    def perform(self, c: dict[str, Any]) -> dict[str, Any]:
        op = c["op"]
        if op == "connect":
            self.clients[c["as"]] = Client(c["address"])
            return {}
        if op == "lock":
            lock = self.client(c).lock(c["name"], **locked(c))
            self.locks[c["as"]] = lock
            self.watch_loss(c["as"], lock)
            return {"token": lock.token, "holder": lock.holder}
        if op == "tryLock":
            lease = self.client(c).try_lock(c["name"], **leased(c))
            if lease is None:
                return {"acquired": False}
            self.locks[c["as"]] = lease
            return {"acquired": True, "token": lease.token, "validForMs": round(lease.valid_for * 1000)}
        if op == "acquirePermit":
            permit = self.client(c).acquire_permit(c["name"], c["permits"], **waited(c))
            self.locks[c["as"]] = permit
            self.watch_loss(c["as"], permit)
            return permit_reply(permit)
        if op == "tryAcquirePermit":
            try:
                permit_lease = self.client(c).try_acquire_permit(c["name"], c["permits"], **leased(c))
            except NoPermitFree as full:
                return {"acquired": False, "holders": holders_of(full.holders)}
            self.locks[c["as"]] = permit_lease
            return {"acquired": True, **permit_reply(permit_lease), "validForMs": round(permit_lease.valid_for * 1000)}
        if op == "getSemaphore":
            semaphore_info = self.client(c).get_semaphore(c["name"], fresh=bool(c.get("fresh")), timeout=seconds(c, "timeoutMs"))
            return {"permits": semaphore_info.permits, "token": semaphore_info.token, "holders": holders_of(semaphore_info.holders)}
        if op == "acquireRW":
            rw = self.client(c).acquire_rwlock(c["name"], c["mode"], **waited(c))
            self.locks[c["as"]] = rw
            self.watch_loss(c["as"], rw)
            return rw_reply(rw)
        if op == "tryAcquireRW":
            try:
                rw_lease = self.client(c).try_acquire_rwlock(c["name"], c["mode"], **leased(c))
            except RWLockBusy as busy:
                return {"acquired": False, "mode": busy.state.mode}
            self.locks[c["as"]] = rw_lease
            return {"acquired": True, **rw_reply(rw_lease), "validForMs": round(rw_lease.valid_for * 1000)}
        if op == "getRWLock":
            return rwlock_state(self.client(c).get_rwlock(c["name"], fresh=bool(c.get("fresh")), timeout=seconds(c, "timeoutMs")))
        if op == "renew":
            held = self.locks.get(c["handle"])
            if not isinstance(held, (Lease, PermitLease, RWLease)):
                raise Unimplemented(f"no lease {c['handle']}")
            return {"validForMs": round(held.renew(seconds(c, "leaseDurationMs"), timeout=seconds(c, "timeoutMs")) * 1000)}
        if op == "getLock":
            info = self.client(c).get_lock(c["name"], fresh=bool(c.get("fresh")), timeout=seconds(c, "timeoutMs"))
            return {"held": info.held, "holder": info.holder, "token": info.token}
        if op == "getLeader":
            leader = self.client(c).get_leader(c["name"], fresh=bool(c.get("fresh")), timeout=seconds(c, "timeoutMs"))
            return {"leader": leader.leader, "value": leader.value, "term": leader.term}
        if op == "campaign":
            campaign = self.client(c).campaign(
                c["name"], candidate=c.get("candidate"), value=c.get("value") or "", lease_duration=seconds(c, "leaseDurationMs")
            )
            handle = c["as"]
            self.campaigns[handle] = campaign

            def follow() -> None:
                try:
                    for event in campaign:
                        write(event_of(handle, event))
                    write({"event": "campaign-ended", "handle": handle})
                except SyncError as error:
                    write({"event": "campaign-ended", "handle": handle, "error": error_of(error)})

            self.background(follow)
            return {}
        if op == "proclaim":
            self.campaigns[c["handle"]].proclaim(c["value"], timeout=seconds(c, "timeoutMs"))
            return {}
        if op == "resign":
            self.campaigns[c["handle"]].resign(timeout=seconds(c, "timeoutMs"))
            return {}
        if op == "observe":
            handle = c["as"]
            leaders = self.client(c).observe(c["name"])
            self.observations[handle] = leaders

            def observe() -> None:
                try:
                    for leader in leaders:
                        write({"event": "leader", "handle": handle, "leader": leader.leader, "value": leader.value, "term": leader.term})
                    write({"event": "observe-ended", "handle": handle})
                except SyncError as error:
                    write({"event": "observe-ended", "handle": handle, "error": error_of(error)})

            self.background(observe)
            return {}
        if op in ("release", "close"):
            handle = c["handle"]
            if handle in self.locks:
                self.locks[handle].release(timeout=seconds(c, "timeoutMs"))
            elif op == "close" and handle in self.campaigns:
                self.campaigns[handle].close()
            elif op == "close" and handle in self.clients:
                self.clients[handle].close()
            else:
                raise Unimplemented(f"no handle {handle} for {op}")
            return {}
        raise Unimplemented(f"unknown op {op}")

    def close(self) -> None:
        # The driver exits within 10 s of stdin's end, whatever state the sidecar is in.
        for lock in self.locks.values():
            if isinstance(lock, (Lock, Permit, RWLock)):
                try:
                    lock.release(timeout=2)
                except SyncError:
                    pass
        for campaign in self.campaigns.values():
            campaign.close()
        for client in self.clients.values():
            client.close()


def main() -> None:
    write({"event": "ready", "language": "python", "client": "metaparticle_sync.Client"})
    driver = Driver()
    for line in sys.stdin:
        command = json.loads(line)
        try:
            reply = {"id": command["id"], "ok": True, **driver.perform(command)}
        except Unimplemented as error:
            reply = {"id": command["id"], "ok": False, "error": {"code": "UNIMPLEMENTED", "field": None, "message": str(error)}}
        except Exception as error:  # reported to the harness, which judges it
            reply = {"id": command["id"], "ok": False, "error": error_of(error)}
        write(reply)
    driver.close()


if __name__ == "__main__":
    main()
