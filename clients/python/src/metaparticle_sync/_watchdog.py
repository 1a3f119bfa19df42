"""The client's own deadline, kept on a thread of its own (DESIGN 3.1)."""

from __future__ import annotations

import threading
import time
from typing import Callable


class Watchdog:
    """Calls `on_expired` once unless `extend` keeps moving the deadline."""

    def __init__(self, on_expired: Callable[[], None]) -> None:
        self._on_expired = on_expired
        self._changed = threading.Condition()
        self._deadline = time.monotonic()
        self._stopped = False
        self._started = False

    def start(self, valid_for: float) -> None:
        self.extend(valid_for)
        self._started = True
        threading.Thread(target=self._run, name="msync-watchdog", daemon=True).start()

    def extend(self, valid_for: float) -> None:
        with self._changed:
            now = time.monotonic()
            # A heartbeat read after the deadline (say, this process was
            # paused) does not revive what already stopped being valid.
            if self._started and now >= self._deadline:
                return
            self._deadline = now + valid_for
            self._changed.notify()

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()

    def remaining(self) -> float:
        with self._changed:
            return 0.0 if self._stopped else max(0.0, self._deadline - time.monotonic())

    def _run(self) -> None:
        with self._changed:
            while not self._stopped:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            if self._stopped:
                return
        self._on_expired()
