"""Leader election through the sidecar, with the blocking grpcio API.

A campaign reads its stream on a thread of its own and keeps the client's own
deadline on another (DESIGN 3.1): if no heartbeat arrives before the last
`valid_for` runs out, this candidate stops leading, closes that stream (so the
sidecar gives the term up instead of renewing a leadership nobody acts on)
and campaigns again on a new one.
"""

from __future__ import annotations

import queue
import threading
from types import TracebackType
from typing import Iterator

import grpc

from metaparticle.sync.v1 import election_service_pb2, election_service_pb2_grpc

from ._common import CampaignEvent, Deposed, Elected, LeaderChanged, SyncError, from_duration, loss_reason, sync_error
from ._watchdog import Watchdog


class _Term:
    def __init__(self, number: int) -> None:
        self.number = number
        self.done = threading.Event()
        self.watchdog: Watchdog | None = None


class Campaign:
    """This process's candidacy in an election; iterate it for its events.

    The campaign ends with `resign()`, `close()` or leaving `with`; the
    iteration then stops, or raises SyncError if the sidecar ended it with an
    error (for example INVALID_ARGUMENT for a bad name).
    """

    def __init__(self, stub: election_service_pb2_grpc.ElectionServiceStub, request: election_service_pb2.CampaignRequest) -> None:
        self.name = request.name
        self.candidate = request.candidate
        self._stub = stub
        self._request = request
        self._events: queue.Queue[CampaignEvent | None] = queue.Queue()
        self._guard = threading.RLock()
        self._leading: _Term | None = None
        self._resigning = False
        self._closed = False
        self._error: SyncError | None = None
        self._call: grpc.Call | None = None
        self._join()

    @property
    def leading(self) -> bool:
        with self._guard:
            return self._leading is not None

    def proclaim(self, value: str) -> None:
        """Publishes a new value to observers; only the leader may."""
        term = self._current_term("proclaim")
        try:
            self._stub.Proclaim(election_service_pb2.ProclaimRequest(name=self.name, term=term, value=value))
        except grpc.RpcError as error:
            raise sync_error(error) from None

    def resign(self) -> None:
        """Steps down now and ends the campaign; another candidate is elected at once."""
        term = self._current_term("resign")
        with self._guard:
            self._resigning = True
        try:
            self._stub.Resign(election_service_pb2.ResignRequest(name=self.name, term=term))
        except grpc.RpcError as error:
            with self._guard:
                self._resigning = False
            raise sync_error(error) from None
        with self._guard:
            self._depose("released", "this candidate resigned")

    def close(self) -> None:
        """Leaves the campaign, giving up leadership at once if leading."""
        with self._guard:
            if self._closed:
                return
            self._closed = True
            self._depose("released", "the campaign was closed")
            call = self._call
        if call is not None:
            call.cancel()
        self._events.put(None)

    def __iter__(self) -> Iterator[CampaignEvent]:
        return self

    def __next__(self) -> CampaignEvent:
        event = self._events.get()
        if event is None:
            self._events.put(None)  # later calls end too
            if self._error is not None:
                raise self._error
            raise StopIteration
        return event

    def __enter__(self) -> Campaign:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _current_term(self, action: str) -> int:
        with self._guard:
            if self._leading is None:
                raise SyncError(
                    grpc.StatusCode.FAILED_PRECONDITION, f"cannot {action} election {self.name}: this candidate is not the leader"
                )
            return self._leading.number

    def _join(self) -> None:
        """Opens a Campaign stream and follows it; a replaced stream's messages are ignored."""
        call = self._stub.Campaign(self._request)
        with self._guard:
            if self._closed:
                call.cancel()
                return
            self._call = call
        threading.Thread(target=self._follow, args=(call,), name=f"msync-campaign-{self.name}", daemon=True).start()

    def _follow(self, call: grpc.Call) -> None:
        try:
            for message in call:  # type: ignore[attr-defined]
                with self._guard:
                    if call is not self._call:
                        return
                    self._handle(message)
            with self._guard:
                if call is self._call:
                    self._depose("released" if self._resigning else "stream-ended", "the campaign ended")
                    self._finish()
        except grpc.RpcError as error:
            with self._guard:
                if call is not self._call:
                    return
                if sync_error(error).code == grpc.StatusCode.CANCELLED:
                    self._depose("released", "the campaign was closed")
                else:
                    self._error = sync_error(error)
                    self._depose("stream-ended", str(self._error))
                self._finish()

    def _handle(self, message: election_service_pb2.CampaignResponse) -> None:
        event = message.WhichOneof("event")
        if event == "elected":
            self._depose("taken-over", "elected again with a new term")
            term = _Term(message.elected.term)
            term.watchdog = Watchdog(lambda: self._expired(term))
            self._leading = term
            term.watchdog.start(from_duration(message.elected.valid_for))
            self._events.put(Elected(term.number, term.done))
        elif event == "renewed":
            if self._leading is not None and self._leading.watchdog is not None:
                self._leading.watchdog.extend(from_duration(message.renewed.valid_for))
        elif event == "deposed":
            if self._leading is not None and self._leading.number == message.deposed.term:
                self._depose(loss_reason(message.deposed.reason), message.deposed.message)
        elif event == "leader_changed":
            changed = message.leader_changed
            # The sidecar tells a candidate only of others' terms, so ours is over; say so first, in order.
            if self._resigning:
                self._depose("released", "this candidate resigned")
            else:
                self._depose("taken-over", "another term began")
            self._events.put(LeaderChanged(changed.leader, changed.value, changed.term))

    def _expired(self, term: _Term) -> None:
        """No heartbeat before the term's deadline: stop leading, and campaign again on a new stream."""
        with self._guard:
            if self._leading is not term:
                return
            self._depose("heartbeat-timeout", "no heartbeat from the sidecar before leadership stopped being valid")
            if self._resigning or self._closed:
                return
            stale = self._call
        self._join()
        if stale is not None:
            stale.cancel()

    def _finish(self) -> None:
        self._closed = True
        self._events.put(None)

    def _depose(self, reason: str, message: str) -> None:
        """Ends the current term, if any, on this side: set `done`, then report it."""
        term = self._leading
        if term is None:
            return
        self._leading = None
        if term.watchdog is not None:
            term.watchdog.stop()
        term.done.set()
        self._events.put(Deposed(term.number, reason, message))
