"""The fencing helpers' own rules; the PostgreSQL function and the admission
policy are exercised end to end by test/fencing."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from metaparticle_sync.fencing import StaleFenceError, fence, fence_annotation_key, stamp_fence


def test_fence_annotation_key_is_the_name_or_its_shortened_form() -> None:
    assert fence_annotation_key("orders") == "fence.sync.metaparticle.io/orders"
    # The same long name shortens to the same key in every client (Go, TypeScript, Java and Rust check this value too).
    assert fence_annotation_key("a" * 70) == "fence.sync.metaparticle.io/" + "a" * 46 + "-6bd5e5034855a112"
    with pytest.raises(ValueError, match="^name: "):
        fence_annotation_key("Bad Name")


def test_stamp_fence_sets_the_token_and_keeps_other_annotations() -> None:
    assert stamp_fence(None, "orders", 7) == {"fence.sync.metaparticle.io/orders": "7"}
    kept = {"other": "x", "fence.sync.metaparticle.io/orders": "3"}
    assert stamp_fence(kept, "orders", "12") is kept
    assert kept == {"other": "x", "fence.sync.metaparticle.io/orders": "12"}
    for bad in (0, -1, "07", True):
        with pytest.raises(ValueError, match="^token: "):
            stamp_fence(None, "orders", bad)


class _DriverError(Exception):
    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class _Cursor:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.calls: list[tuple[str, Sequence[Any]]] = []

    def execute(self, query: str, params: Sequence[Any], /) -> object:
        self.calls.append((query, params))
        if self.error is not None:
            raise self.error
        return None


def test_fence_calls_the_function_and_maps_its_stale_token_error() -> None:
    cursor = _Cursor(None)
    fence(cursor, "orders", 7)
    assert cursor.calls == [("SELECT metaparticle_sync_fence(%s, %s::bigint)", ("orders", "7"))]

    text = 'stale fencing token for lock "orders": this write carries token 7, the current token is 8'
    stale = _DriverError(text, "MSF01")
    with pytest.raises(StaleFenceError) as caught:
        fence(_Cursor(stale), "orders", 7)
    assert str(caught.value) == text and caught.value.lock_name == "orders" and caught.value.stale_token == "7"
    assert caught.value.__cause__ is stale

    other = _DriverError("could not serialize access due to concurrent update", "40001")
    with pytest.raises(_DriverError):
        fence(_Cursor(other), "orders", 7)


# Against a real PostgreSQL: sql/fencing.sql loaded into a server this test
# starts (initdb into a temporary folder, a Unix socket there and no TCP; as
# `nobody` when the tests run as root, since PostgreSQL refuses root), driven
# through psycopg 3, a test-only dependency (requirements-dev.txt).

_REPO = Path(__file__).resolve().parents[3]
_NOBODY = 65534


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    assert found, "no PostgreSQL under /usr/lib/postgresql: run scripts/install-toolchains.sh"
    return found[-1].parent


def _as_server_user(command: list[str]) -> list[str]:
    drop = [f"--reuid={_NOBODY}", f"--regid={_NOBODY}", "--clear-groups"] if os.getuid() == 0 else []
    return ["setpriv", "--pdeathsig", "SIGKILL", *drop, "--", *command]


@pytest.fixture(scope="module")
def postgres_dsn() -> Iterator[str]:
    bin_dir = _postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="msync-postgres-"))
    if os.getuid() == 0:
        os.chown(folder, _NOBODY, _NOBODY)
    data = folder / "data"
    server: subprocess.Popen[bytes] | None = None
    try:
        initdb = [str(bin_dir / "initdb"), f"--pgdata={data}", "--username=postgres", "--auth=trust", "--no-sync"]
        subprocess.run(_as_server_user(initdb), check=True, capture_output=True, timeout=60, cwd=folder)
        options = ["-c", "listen_addresses=", "-c", f"unix_socket_directories={folder}", "-c", "fsync=off"]
        server = subprocess.Popen(
            _as_server_user([str(bin_dir / "postgres"), "-D", str(data), *options]),
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        dsn = f"host={folder} port=5432 user=postgres dbname=postgres"
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(dsn, connect_timeout=2) as connection:
                    connection.execute((_REPO / "sql" / "fencing.sql").read_text())
                break
            except psycopg.OperationalError:
                assert server.poll() is None, "postgres exited at start"
                assert time.monotonic() < deadline, "postgres did not accept connections within 30 s"
                time.sleep(0.1)
        yield dsn
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)
        shutil.rmtree(folder, ignore_errors=True)


def test_fence_in_postgresql_refuses_a_stale_token_in_the_callers_transaction(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as connection:
        connection.execute("CREATE TABLE orders (id int PRIMARY KEY, writer text NOT NULL)")
        connection.commit()
        with connection.transaction(), connection.cursor() as cursor:
            fence(cursor, "orders", 8)
            cursor.execute("INSERT INTO orders VALUES (1, 'newer')")
        with pytest.raises(StaleFenceError) as caught:
            with connection.transaction(), connection.cursor() as cursor:
                fence(cursor, "orders", 7)
                cursor.execute("UPDATE orders SET writer = 'stale' WHERE id = 1")
        assert str(caught.value) == 'stale fencing token for lock "orders": this write carries token 7, the current token is 8'
        assert isinstance(caught.value.__cause__, psycopg.Error) and caught.value.__cause__.sqlstate == "MSF01"
        # The refused transaction rolled back whole; an equal token, and a row without a fence, still write.
        with connection.transaction(), connection.cursor() as cursor:
            fence(cursor, "orders", 8)
            cursor.execute("INSERT INTO orders VALUES (2, 'newer')")
        rows = connection.execute("SELECT id, writer FROM orders ORDER BY id").fetchall()
        assert rows == [(1, "newer"), (2, "newer")]
        assert connection.execute("SELECT token FROM metaparticle_sync_fences WHERE name = 'orders'").fetchone() == (8,)
