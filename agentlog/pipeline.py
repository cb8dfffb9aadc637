"""Async mode: a bounded in-process buffer and the flusher thread that empties it.

The caller's thread only appends to a deque (no I/O, no serialization, no
lock held across I/O). The flusher takes batches, redacts and serializes
them, and hands them on: to rq when ``redis_url`` is set, else straight to
the database. The failure chain is queue -> sync insert -> spool -> counted loss.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from agentlog import counters, writer
from agentlog.breaker import CircuitBreaker
from agentlog.clock import deadline_clock
from agentlog.config import Config
from agentlog.execution import Execution
from agentlog.serialize import Wire, to_wire

if TYPE_CHECKING:
    from agentlog.transport import RqTransport

logger = logging.getLogger("agentlog")

# Batches handed to Redis in one pipeline round trip, and the records a round
# may hold: small batches share a round trip, but a full batch is not held
# back while others are serialized (a worker would sit idle meanwhile).
BATCHES_PER_ROUND = 16
RECORDS_PER_ROUND = 500
# Seconds of serializing between two offers of the GIL to the application's
# threads. time.sleep(0) is how a thread offers it; it costs ~60 µs here (the
# kernel's timer slack), which after every few records was a tenth of the
# flusher's time, so it is paid once per millisecond of work instead.
YIELD_AFTER = 0.001
# Seconds between two "falling back to sync" warnings (the others go to DEBUG).
FALLBACK_LOG_INTERVAL = 10.0

FallbackListener = Callable[[str, int], None]
EnqueueListener = Callable[[list[Any]], None]


class Pipeline:
    def __init__(
        self,
        config: Config,
        *,
        transport: RqTransport | None = None,
        eager: bool = False,
        on_fallback: list[FallbackListener] | None = None,
        on_enqueued: list[EnqueueListener] | None = None,
    ) -> None:
        self.config = config
        self.transport = transport
        # Eager: hand each record on from the caller's thread, through the same
        # code as the flusher. For tests that must see a job the moment track() returns.
        self.eager = eager
        self.breaker = CircuitBreaker(config.breaker_cooldown)
        self.pid = os.getpid()
        self._buffer: deque[Execution] = deque()
        self._wakeup = threading.Event()
        self._idle = threading.Condition()
        self._in_flight = False
        self._flushers = 0  # threads inside flush(): the flusher goes on until the buffer is empty
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._on_fallback = on_fallback if on_fallback is not None else []
        self._on_enqueued = on_enqueued if on_enqueued is not None else []
        self._fallback_logged_at = float("-inf")
        self._fallbacks_unlogged = 0
        self._buffer_size = config.buffer_size
        self._batch_size = config.batch_size
        if eager:
            self.put = self._put_eager  # type: ignore[method-assign]

    # -- caller's thread -------------------------------------------------

    def put(self, execution: Execution) -> None:
        """Queue one record. Never blocks; a full buffer spills to the spool."""
        buffer = self._buffer
        size = len(buffer)
        if size >= self._buffer_size or self._stopping:
            # Full, or shut down under a thread that still held this pipeline.
            self._spill(execution)
            return
        buffer.append(execution)
        # Once per batch, not per record: wake the flusher (setting an Event takes
        # a lock) and make sure it is alive (restarted, and logged, if it died).
        if size + 1 >= self._batch_size:
            if not self._wakeup.is_set():
                self._wakeup.set()
            thread = self._thread
            if thread is None or not thread.is_alive():
                self._start_thread()
        elif self._thread is None:
            self._start_thread()

    def _put_eager(self, execution: Execution) -> None:
        self._hand_on([[execution]])

    def _spill(self, execution: Execution) -> None:
        if self._stopping:
            reason = "recorded after the pipeline shut down"
        else:
            reason = f"buffer full ({self.config.buffer_size} executions, buffer_size)"
        writer.spool([to_wire(execution, self.config)], self.config, reason)

    def _start_thread(self) -> None:
        with self._thread_lock:
            thread = self._thread
            if (thread is not None and thread.is_alive()) or self._stopping:
                return
            if thread is not None:
                counters.incr("errors")
                logger.error("agentlog: the flusher thread had died; started a new one")
            self._thread = threading.Thread(target=self._run, name="agentlog-flusher", daemon=True)
            self._thread.start()

    def pending(self) -> int:
        return len(self._buffer)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record put so far was handed on; False on timeout."""
        if self._buffer and (self._thread is None or not self._thread.is_alive()):
            self._start_thread()
        deadline = None if timeout is None else deadline_clock() + timeout
        with self._idle:
            self._flushers += 1
            try:
                self._wakeup.set()
                while self._buffer or self._in_flight:
                    if self._thread is None or not self._thread.is_alive():
                        return False  # stopped: nobody will empty the buffer
                    remaining = None if deadline is None else deadline - deadline_clock()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._wakeup.set()
                    self._idle.wait(0.05 if remaining is None else min(remaining, 0.05))
            finally:
                self._flushers -= 1
        return True

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush, then stop the thread. Records still buffered after ``timeout`` are spooled."""
        done = self.flush(timeout)
        self._stopping = True
        self._wakeup.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(0.5 if timeout is None else max(0.0, min(timeout, 0.5)))
        leftover = []
        while self._buffer:
            try:
                leftover.append(self._buffer.popleft())
            except IndexError:
                break
        if leftover:
            reason = "shutdown timed out before the buffer drained"
            writer.spool([to_wire(e, self.config) for e in leftover], self.config, reason)
        return done and not leftover

    # -- flusher thread --------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            try:
                self._wakeup.wait(self.config.flush_interval)
                self._drain()
            except BaseException as exc:  # the thread must outlive any bug
                counters.incr("errors")
                logger.exception("agentlog: flusher error, continuing: %s", writer.describe(exc))
                with self._idle:
                    self._in_flight = False
                    self._idle.notify_all()

    def _take_batches(self) -> list[list[Execution]]:
        batches: list[list[Execution]] = []
        size = self.config.batch_size
        taken = 0
        while self._buffer and len(batches) < BATCHES_PER_ROUND and taken < RECORDS_PER_ROUND:
            batch: list[Execution] = []
            try:
                while len(batch) < size:
                    batch.append(self._buffer.popleft())
            except IndexError:
                pass
            if batch:
                batches.append(batch)
                taken += len(batch)
        return batches

    def _drain(self) -> None:
        """Hand on what was buffered when the flusher woke, then any full batch.

        A partial batch that arrived meanwhile waits for the next wakeup, unless
        a flush or shutdown is waiting for it: going round for it at once would
        turn a steady stream of calls into jobs of a few records each, and a
        worker pays the same fixed cost (~5 ms of rq) for each job.
        """
        owed = len(self._buffer)
        while True:
            self._wakeup.clear()  # what a put or flush sets from here on wakes the next round
            with self._idle:
                self._in_flight = True
            try:
                batches = self._take_batches()
                if batches:
                    self._hand_on(batches)
            finally:
                with self._idle:
                    self._in_flight = False
                    self._idle.notify_all()
            if not batches:
                return
            owed -= sum(map(len, batches))
            if (
                owed <= 0
                and len(self._buffer) < self._batch_size
                and not self._flushers
                and not self._stopping
            ):
                return

    def _serialize(self, batch: list[Execution]) -> list[Wire]:
        wires = []
        config = self.config
        offer_at = deadline_clock() + YIELD_AFTER
        for execution in batch:
            wires.append(to_wire(execution, config))
            if deadline_clock() >= offer_at and not self.eager:
                # Hand the GIL to an application thread that wants it, instead of
                # holding it for a whole switch interval (5 ms) of redaction.
                time.sleep(0)
                offer_at = deadline_clock() + YIELD_AFTER
        return wires

    def _hand_on(self, batches: list[list[Execution]]) -> None:
        wire_batches = [self._serialize(batch) for batch in batches]
        if self.transport is None:
            for wires in wire_batches:
                writer.store(wires, self.config)
            return
        if self.breaker.allow():
            try:
                jobs = self.transport.enqueue(wire_batches)
            except Exception as exc:
                reason = writer.describe(exc)
                self.breaker.failure(reason)
            else:
                self.breaker.success()
                counters.incr("enqueued", sum(map(len, wire_batches)))
                for listener in self._on_enqueued:
                    listener(jobs)
                # Spooled records go straight to the database once it answers again.
                writer.maybe_replay(self.config)
                return
        else:
            reason = f"circuit open since the queue failed ({self.breaker.last_reason})"
        for wires in wire_batches:
            self._fall_back(wires, reason)

    def _fall_back(self, wires: list[Wire], reason: str) -> None:
        counters.incr("fallbacks")
        # During an outage every batch falls back: one warning per interval,
        # with the count of the others, instead of hundreds of lines a second.
        now = deadline_clock()
        if now - self._fallback_logged_at >= FALLBACK_LOG_INTERVAL:
            more = self._fallbacks_unlogged
            logger.warning(
                "agentlog: falling back to sync: %s (%d executions%s)",
                reason,
                len(wires),
                f"; {more} more batches fell back since the last warning" if more else "",
            )
            self._fallback_logged_at, self._fallbacks_unlogged = now, 0
        else:
            self._fallbacks_unlogged += 1
            logger.debug("agentlog: falling back to sync: %s (%d executions)", reason, len(wires))
        for listener in self._on_fallback:
            listener(reason, len(wires))
        writer.store(wires, self.config)
