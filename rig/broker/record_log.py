"""One test's broker records, with bounded waits and the queries tests judge on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias, TypeVar

from rig.broker.records import (
    BrokerRecord,
    Connack,
    Connect,
    Disconnect,
    Ended,
    PingReq,
    Subscribe,
    Unsubscribe,
)
from rig.deadline import Deadline
from rig.errors import RigError, WaitTimeout

R = TypeVar("R", bound=BrokerRecord)
# Where a query starts: after this record, after a ``mark()``, or (None) at the test's start.
After: TypeAlias = "BrokerRecord | int | None"
# How many records a failure message quotes.
TAIL_RECORDS = 15


class RecordsUnavailable(RigError):
    """The broker gives the rig no records: the check that needs them cannot be made.

    The pytest plugin turns it into a skip whose reason names what could not be checked
    (``rig.fixtures.broker_records``): a test never quietly checks less.
    """


class RecordLog:
    """The records of one test, in the order the broker wrote them, filled by a reader thread
    (``rig.evidence.broker_tap``) and waited on by the test.

    ``path`` is this test's ``broker_records.jsonl``, ``source`` the broker's own file;
    ``unavailable`` says why there are no records at all (an external broker), and then every
    query raises ``RecordsUnavailable`` rather than answer "none".
    """

    def __init__(
        self,
        path: Path,
        source: Path | None,
        unavailable: str | None = None,
        catch_up: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        # Reads what the broker wrote up to now, so that a mark or a query is not behind the
        # broker by a polling period.
        self._catch_up = catch_up
        self.source = source
        self.unavailable = unavailable
        self._records: list[BrokerRecord] = []
        # When the reader read each record (wall clock), by identity: a finer clock than
        # mosquitto's whole-second stamp (``seen``).
        self._seen: dict[int, float] = {}
        self._cond = threading.Condition()
        self.failed: BaseException | None = None

    # -- fed by the reader ----------------------------------------------------------------------

    def add(self, records: list[BrokerRecord], seen: float | None = None) -> None:
        """``seen``: when the reader read them (``time.time()``), if it says."""
        with self._cond:
            self._records.extend(records)
            if seen is not None:
                self._seen.update((id(r), seen) for r in records)
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """The reader died: waits raise this at once rather than time out."""
        with self._cond:
            self.failed = error
            self._cond.notify_all()

    # -- queries --------------------------------------------------------------------------------

    def mark(self) -> int:
        """A position: pass it as ``after`` to see only the records that come later. (Without
        records it is 0: the test goes on, and its first query says what cannot be checked.)"""
        if self._catch_up is not None:
            self._catch_up()
        with self._cond:
            return len(self._records)

    def require(self, what: str) -> None:
        """Raise ``RecordsUnavailable`` saying ``what`` cannot be checked, if there are no records."""
        if self.unavailable is not None:
            raise RecordsUnavailable(f"cannot check {what}: {self.unavailable}")

    def all(
        self, client: str | None = None, *, after: After = None, epoch: int | None = None
    ) -> list[BrokerRecord]:
        """Every record so far (of ``client``, after the record ``after``, written by the broker's
        run ``epoch``), oldest first."""
        self.require("what the broker received")
        if self._catch_up is not None:
            self._catch_up()
        with self._cond:
            records = list(self._records)
        return [r for r in records[_start(records, after) :] if _matches(r, client, epoch)]

    def of(
        self, cls: type[R], client: str | None = None, *, after: After = None, epoch: int | None = None
    ) -> list[R]:
        return [r for r in self.all(client, after=after, epoch=epoch) if isinstance(r, cls)]

    def connects(
        self, client: str | None = None, *, after: After = None, epoch: int | None = None
    ) -> list[Connect]:
        return self.of(Connect, client, after=after, epoch=epoch)

    def connacks(
        self, client: str | None = None, *, after: After = None, epoch: int | None = None
    ) -> list[Connack]:
        return self.of(Connack, client, after=after, epoch=epoch)

    def subscribes(
        self, client: str | None = None, *, after: After = None, epoch: int | None = None
    ) -> list[Subscribe]:
        return self.of(Subscribe, client, after=after, epoch=epoch)

    def unsubscribes(
        self, client: str | None = None, *, after: After = None, epoch: int | None = None
    ) -> list[Unsubscribe]:
        return self.of(Unsubscribe, client, after=after, epoch=epoch)

    def pings(
        self, client: str | None = None, *, after: After = None, epoch: int | None = None
    ) -> list[PingReq]:
        return self.of(PingReq, client, after=after, epoch=epoch)

    def disconnects(
        self, client: str | None = None, *, after: After = None, epoch: int | None = None
    ) -> list[Disconnect]:
        return self.of(Disconnect, client, after=after, epoch=epoch)

    def ended(
        self, client: str | None = None, *, after: After = None, epoch: int | None = None
    ) -> list[Ended]:
        """How each connection of ``client`` ended, as the broker saw it."""
        return self.of(Ended, client, after=after, epoch=epoch)

    def seen(self, record: BrokerRecord) -> float | None:
        """When the reader read ``record`` (wall clock), None if it did not say. Records are kept
        for the whole test, so an identity stays theirs."""
        with self._cond:
            return self._seen.get(id(record))

    def tail(self, count: int = TAIL_RECORDS) -> list[str]:
        with self._cond:
            return [r.describe() for r in self._records[-count:]]

    # -- waits ----------------------------------------------------------------------------------

    def wait_for(
        self,
        kind: type[R],
        timeout: float,
        *,
        client: str | None = None,
        after: After = None,
        epoch: int | None = None,
        where: Callable[[R], bool] | None = None,
        what: str = "",
    ) -> R:
        """The first ``kind`` record (of ``client``, after ``after``: a record or a ``mark()``,
        written by the broker's run ``epoch``, for which ``where`` holds).

        A record that arrived before the call counts: there is no race with a packet the
        broker handled just before the wait. After a restart, a mark taken before it is not
        enough: the old run may still write records after the mark (a board reconnecting to
        it as it shuts down); wait for the ``BrokerStarted`` after the mark and pass its
        ``epoch``. On expiry, WaitTimeout names what was awaited (``what`` describes ``where``),
        the last records seen and this test's records file.
        """
        found = self.next(kind, timeout, client=client, after=after, epoch=epoch, where=where)
        if found is not None:
            return found
        awaited = f"the broker's {kind.kind.value.upper()} record"
        if client is not None:
            awaited += f" of client {client!r}"
        if what:
            awaited += f" with {what}"
        if epoch is not None:
            awaited += f" from the broker's run {epoch}"
        if isinstance(after, BrokerRecord):
            awaited += f" after [{after.describe()}]"
        raise WaitTimeout(awaited=awaited, timeout=timeout, last_seen=self.tail(), log_path=self.path)

    def next(
        self,
        kind: type[R],
        timeout: float,
        *,
        client: str | None = None,
        after: After = None,
        epoch: int | None = None,
        where: Callable[[R], bool] | None = None,
    ) -> R | None:
        """As ``wait_for``, but None when ``timeout`` expires: for a watch that passes when
        nothing comes (a connection that does not end)."""
        self.require(f"{kind.kind.value.upper()} records")
        deadline = Deadline(timeout)
        with self._cond:
            while True:
                if self.failed is not None:
                    raise RigError(f"reading the broker's records failed: {self.failed}") from self.failed
                for record in self._records[_start(self._records, after) :]:
                    if (
                        isinstance(record, kind)
                        and _matches(record, client, epoch)
                        and (where is None or where(record))
                    ):
                        return record
                    # Within the pass too: a ``where`` that queries the records (each call reads
                    # what the broker wrote since) under a storm of records made one pass outlive
                    # its bound by 13 minutes (a client-id take-over storm, ~1,000 records/s).
                    if deadline.expired:
                        return None
                if deadline.expired:
                    return None
                self._cond.wait(deadline.remaining_or(1.0))


def _matches(record: BrokerRecord, client: str | None, epoch: int | None) -> bool:
    return (client is None or record.client == client) and (epoch is None or record.epoch == epoch)


def _start(records: list[BrokerRecord], after: After) -> int:
    """Where the records after ``after`` (a record, or a ``mark()``) begin."""
    if after is None:
        return 0
    if isinstance(after, int):
        return after
    # By identity: two PINGREQs of one second are equal as values, but not the same record.
    for i, r in enumerate(records):
        if r is after:
            return i + 1
    raise ValueError(f"{after.describe()} is not a record of this log")
