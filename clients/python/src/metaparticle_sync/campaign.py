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

from metaparticle.sync.v1 import election_service_pb2, election_service_pb2_grpc, types_pb2

from ._common import CampaignEvent, Deposed, Elected, LeaderChanged, call_timeout, from_duration, loss_reason
from ._errors import DeadlineExceeded, NotHeld, SyncError, from_rpc_error, shutting_down
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
    error (for example InvalidArgument for a bad name, or Unavailable when
    the sidecar stopped answering). From the moment `resign()` or `close()`
    is called, no `Elected` is reported again. A `Deposed` with reason
    "shutdown" (the sidecar is shutting down) ends the campaign: its stream is
    closed at once, which lets the sidecar hand the leadership on, and the
    iteration raises Unavailable (reason "SHUTTING_DOWN").
    """

    def __init__(
        self,
        stub: election_service_pb2_grpc.ElectionServiceStub,
        streams: election_service_pb2_grpc.ElectionServiceStub,
        request: election_service_pb2.CampaignRequest,
        timeout: float,
    ) -> None:
        self.name = request.name
        self.candidate = request.candidate
        self._stub = stub
        self._streams = streams
        self._request = request
        self._timeout = timeout
        self._events: queue.Queue[CampaignEvent | None] = queue.Queue()
        self._guard = threading.RLock()
        self._leading: _Term | None = None
        self._leaving = False
        """resign() or close() was called: never elected again."""
        self._closed = False
        self._error: SyncError | None = None
        self._call: grpc.Call | None = None
        self._join()

    @property
    def leading(self) -> bool:
        with self._guard:
            return self._leading is not None

    def proclaim(self, value: str, *, timeout: float | None = None) -> None:
        """Publishes a new value to observers; only the leader may (else
        NotHeld). No answer within `timeout` (default 10 s) raises DeadlineExceeded."""
        with self._guard:
            term = self._leading
        if term is None:
            raise self._not_leading("proclaim")
        try:
            self._stub.Proclaim(
                election_service_pb2.ProclaimRequest(name=self.name, term=term.number, value=value),
                timeout=call_timeout(timeout, self._timeout),
            )
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def resign(self, *, timeout: float | None = None) -> None:
        """Steps down and ends the campaign; another candidate is elected at once.

        This side stops leading the moment it is called: the term's `done` is
        set and `Deposed` ("released") reported before the sidecar is asked,
        and no `Elected` comes after, whatever the sidecar answers. It returns
        once the sidecar has given the leadership up, or the term's promise
        (`valid_for`) ran out; if the sidecar does not answer within `timeout`
        (default 10 s) while the promise runs, it raises DeadlineExceeded, and
        the sidecar gives the leadership up when it reads the closed stream.
        Not leading, it just leaves the campaign.
        """
        limit = call_timeout(timeout, self._timeout)
        with self._guard:
            if self._closed:
                return
            self._leaving = True
            term = self._leading
            promise = term.watchdog.remaining() if term is not None and term.watchdog is not None else 0.0
            self._depose("released", "this candidate resigned")
        failure: SyncError | None = None
        if term is not None:
            try:
                self._stub.Resign(election_service_pb2.ResignRequest(name=self.name, term=term.number), timeout=min(limit, promise))
            except grpc.RpcError as error:
                failure = from_rpc_error(error)
        self._leave()
        if isinstance(failure, NotHeld):
            return  # the term had already ended in the sidecar
        if isinstance(failure, DeadlineExceeded) and promise <= limit:
            return  # the promise ran out first: the term is over anyway
        if failure is not None:
            raise failure

    def close(self) -> None:
        """Leaves the campaign, giving up leadership at once if leading."""
        with self._guard:
            if self._closed:
                return
            self._leaving = True
            self._depose("released", "the campaign was closed")
        self._leave()

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

    def _not_leading(self, action: str) -> NotHeld:
        return NotHeld(grpc.StatusCode.FAILED_PRECONDITION, f"cannot {action} election {self.name}: this candidate is not the leader")

    def _leave(self) -> None:
        """Ends the campaign on this side: closes the stream (which withdraws
        the candidacy in the sidecar) and ends the iteration."""
        with self._guard:
            if self._closed:
                return
            call = self._call
            self._call = None  # whatever the stream says from now on is ignored
            self._finish()
        if call is not None:
            call.cancel()

    def _join(self) -> None:
        """Opens a Campaign stream and follows it; a replaced stream's messages are ignored."""
        call = self._streams.Campaign(self._request)
        with self._guard:
            if self._leaving or self._closed:
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
                    shutdown = self._handle(message)
                if shutdown:
                    # Closing the stream is the acknowledgement the sidecar
                    # waits for before it gives the leadership up (docs/design.md 3.7).
                    call.cancel()
                    return
            with self._guard:
                if call is self._call:
                    self._depose("released" if self._leaving else "stream-ended", "the campaign ended")
                    self._finish()
        except grpc.RpcError as error:
            with self._guard:
                if call is not self._call:
                    return
                failure = from_rpc_error(error)
                if failure.code == grpc.StatusCode.CANCELLED:
                    self._depose("released", "the campaign was closed")
                else:
                    self._error = failure
                    self._depose("stream-ended", str(failure))
                self._finish()

    def _handle(self, message: election_service_pb2.CampaignResponse) -> bool:
        """Handles one message; True if the sidecar deposed this candidate
        because it is shutting down, which ends the campaign (the caller closes the stream)."""
        event = message.WhichOneof("event")
        if event == "elected":
            self._depose("taken-over", "elected again with a new term")
            if self._leaving:
                return False  # resign or close was called: never elected again; the stream is being closed
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
            if message.deposed.reason == types_pb2.LOSS_REASON_SHUTDOWN:
                # The campaign is over, as when the stream ends with the sidecar shutting down.
                self._error = shutting_down(message.deposed.message)
                self._call = None  # whatever the stream says from now on is ignored
                self._finish()
                return True
        elif event == "leader_changed":
            changed = message.leader_changed
            # The sidecar tells a candidate only of others' terms, so ours is over; say so first, in order.
            self._depose("taken-over", "another term began")
            self._events.put(LeaderChanged(changed.leader, changed.value, changed.term))
        return False

    def _expired(self, term: _Term) -> None:
        """No heartbeat before the term's deadline: stop leading, and campaign again on a new stream."""
        with self._guard:
            if self._leading is not term:
                return
            self._depose("heartbeat-timeout", "no heartbeat from the sidecar before leadership stopped being valid")
            if self._leaving or self._closed:
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
