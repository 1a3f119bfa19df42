"""Fencing where the write lands (docs/design.md 3.12).

Stamp a lock's token on a Kubernetes object before writing it
(`stamp_fence`), or check it in the transaction of a PostgreSQL write
(`fence`). Neither talks to a server itself, and neither imports a Kubernetes
client or a database driver: the caller writes with its own client, in its own
transaction.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import MutableMapping, Sequence
from typing import Any, Protocol

FENCE_ANNOTATION_PREFIX = "fence.sync.metaparticle.io/"
"""The prefix of every fence annotation key; the name part follows it."""

STALE_FENCE_SQLSTATE = "MSF01"
"""The SQLSTATE sql/fencing.sql raises for a stale token."""

_MAX_KEY_NAME = 63  # the longest name part of an annotation key
_HASH_DIGITS = 16  # hex digits of SHA-256 that end a shortened name part
_LEASE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_TOKEN = re.compile(r"^[1-9][0-9]{0,17}$")


def fence_annotation_key(name: str) -> str:
    """The annotation that carries the fence of lock or election `name`:
    ``fence.sync.metaparticle.io/<name>``. A name longer than 63 characters is
    shortened to its first 46, a dash and the first 16 hex digits of its
    SHA-256. Raises ValueError naming the field for a name that is not a lock
    or election name."""
    if not isinstance(name, str) or not 0 < len(name) <= 253 or not _LEASE_NAME.match(name):
        raise ValueError(f"name: {name!r} is not a lock or election name (a DNS subdomain name, at most 253 characters)")
    if len(name) <= _MAX_KEY_NAME:
        return FENCE_ANNOTATION_PREFIX + name
    digest = hashlib.sha256(name.encode()).hexdigest()[:_HASH_DIGITS]
    return f"{FENCE_ANNOTATION_PREFIX}{name[: _MAX_KEY_NAME - _HASH_DIGITS - 1]}-{digest}"


def _token_text(token: int | str) -> str:
    text = str(token)
    if isinstance(token, bool) or not _TOKEN.match(text):
        raise ValueError(f"token: {token!r} is not a fencing token (a positive integer, at most 18 digits)")
    return text


def stamp_fence(annotations: MutableMapping[str, str] | None, name: str, token: int | str) -> MutableMapping[str, str]:
    """Sets the fence of lock or election `name` to `token` (the lock's token,
    the leadership's term, or MSYNC_FENCING_TOKEN / MSYNC_TERM as the CLI
    passes them) in `annotations` (a new dict when None) and returns it.
    Stamp the object right before writing it::

        obj.metadata.annotations = stamp_fence(obj.metadata.annotations, lock.name, lock.token)

    With the fencing policy installed (deploy/components/fencing), the API
    server refuses the write if a newer holder has written the object since."""
    key = fence_annotation_key(name)
    value = _token_text(token)
    if annotations is None:
        annotations = {}
    annotations[key] = value
    return annotations


class StaleFenceError(Exception):
    """A fenced write refused because a newer holder of the lock has written.

    `lock_name` and `stale_token` are what the write carried; the message is
    the server's, naming the lock, this token and the current one; the
    driver's exception is the ``__cause__``. Roll the transaction back."""

    code = STALE_FENCE_SQLSTATE

    def __init__(self, message: str, lock_name: str, stale_token: str) -> None:
        super().__init__(message)
        self.lock_name = lock_name
        self.stale_token = stale_token


class Cursor(Protocol):
    """What `fence` needs of a DB-API cursor."""

    def execute(self, query: str, params: Sequence[Any], /) -> object: ...


def _sqlstate(error: BaseException) -> str | None:
    # psycopg 3 names it sqlstate, psycopg2 pgcode.
    for attribute in ("sqlstate", "pgcode"):
        value = getattr(error, attribute, None)
        if isinstance(value, str):
            return value
    return None


def fence(cursor: Cursor, name: str, token: int | str) -> None:
    """Checks `token` against the highest token recorded for `name` in
    PostgreSQL (sql/fencing.sql) and records it. Call it with a cursor of the
    transaction of the guarded write, before the write; raises
    StaleFenceError when a newer holder has written. The driver's paramstyle
    must be ``format`` (%s), as psycopg's and psycopg2's are."""
    if not isinstance(name, str) or name == "":
        raise ValueError("name: must be a non-empty lock or election name")
    value = _token_text(token)
    try:
        cursor.execute("SELECT metaparticle_sync_fence(%s, %s::bigint)", (name, value))
    except Exception as error:
        if _sqlstate(error) != STALE_FENCE_SQLSTATE:
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else "stale fencing token"
        raise StaleFenceError(message, name, value) from error
