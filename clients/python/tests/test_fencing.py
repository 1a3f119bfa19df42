"""The fencing helpers' own rules; the PostgreSQL function and the admission
policy are exercised end to end by test/fencing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
