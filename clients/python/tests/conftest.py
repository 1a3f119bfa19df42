"""A real sidecar per test: the memory backend on a free loopback port."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path
from typing import Callable, Iterator

import pytest

from metaparticle_sync import AsyncClient, Client, Lock, Permit, RWLock

ROOT = Path(__file__).resolve().parents[3]


def _tied(command: list[str]) -> list[str]:
    """Runs `command` under util-linux setpriv, if present, so that the kernel
    kills it when pytest dies, even outright. (A preexec_fn calling prctl would
    fork this process with gRPC's threads running, which breaks the child.)"""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "SIGKILL", "--", *command] if setpriv else command


class Daemon:
    """`$MSYNC_NODE $MSYNC_DAEMON_MAIN` (set by `npm test`), or the repository's
    own node and dist/daemon/main.js."""

    def __init__(self, *flags: str) -> None:
        node = os.environ.get("MSYNC_NODE") or str(ROOT / "node_modules/.bin/node")
        main = os.environ.get("MSYNC_DAEMON_MAIN") or str(ROOT / "dist/daemon/main.js")
        self.process = subprocess.Popen(
            _tied([node, main, "--listen=127.0.0.1:0", "--backend=memory", "--shutdown-timeout=1s", *flags]),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.frozen = False
        self.clients: list[Client] = []
        self.async_clients: list[AsyncClient] = []
        self.log: list[str] = []
        self._address: str | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._read_log, daemon=True).start()
        if not self._ready.wait(30) or self._address is None:
            self.stop()
            raise RuntimeError("the daemon did not get ready within 30 s; its log:\n" + "\n".join(self.log))
        self.address: str = self._address

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line.rstrip())
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("msg") == "gRPC server listening":
                self._address = entry["address"]
            elif str(entry.get("msg", "")).startswith("ready"):
                self._ready.set()
        self._ready.set()  # the daemon exited: stop waiting

    def client(self) -> Client:
        client = Client(self.address)
        self.clients.append(client)
        return client

    def async_client(self) -> AsyncClient:
        """Must be closed by the test, on its own event loop."""
        return AsyncClient(self.address)

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.frozen:
            self.process.send_signal(signal.SIGCONT)
            self.frozen = False

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; clients close after the daemon is gone,
        as a SIGTERM that arrives just as a client stream or connection closes can
        make the daemon wait for its full --shutdown-timeout (1 s here)."""
        self.thaw()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for client in self.clients:
            client.close()


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    d = Daemon()
    yield d
    d.stop()


@pytest.fixture
def short_lease_daemon() -> Iterator[Daemon]:
    d = Daemon("--lease-duration=2s", "--renew-deadline=1s")
    yield d
    d.stop()


HOLDS: dict[str, Callable[[Client, str, float | None], Lock | Permit | RWLock]] = {
    "lock": lambda client, name, lease: client.lock(name, lease_duration=lease, wait_timeout=2),
    "permit": lambda client, name, lease: client.acquire_permit(name, 2, lease_duration=lease, wait_timeout=2),
    "rwlock": lambda client, name, lease: client.acquire_rwlock(name, "shared", lease_duration=lease, wait_timeout=2),
}
"""A held lock, a held permit and a read-write lock held shared, which keep
the same guarantees: tests of them are parametrized with these (name, lease
duration or None; a wait of 2 s)."""
