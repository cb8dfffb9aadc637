"""The disk spool: where records go when neither the queue nor the database takes them.

Append-only JSON Lines files under ``Config.spool_dir``, one wire record a
line. Each write is one batch, flushed and fsynced before ``write`` returns,
so a record the spool accepted survives a crash of the process (a power cut
may still lose the last write where the disk lies about fsync). Replay claims
a file by renaming it (atomic, so two processes never replay the same file),
inserts its records idempotently and deletes it only after they are committed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from agentlog import counters
from agentlog.clock import utcnow
from agentlog.serialize import Wire

logger = logging.getLogger("agentlog")

SUFFIX = ".jsonl"
CLAIMED = ".replaying"


class SpoolFull(OSError):
    """Writing would take the spool past ``spool_max_bytes``."""


@dataclass
class ReplayReport:
    files: int = 0
    records: int = 0
    inserted: int = 0
    corrupt: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._sequence = 0
        # For the writer's automatic replay: look once at start (a previous run
        # may have left files), again when this process spooled, and periodically.
        self.replay_pending = True
        self.replay_checked_at = float("-inf")
        self.replay_turn = threading.Lock()

    def files(self) -> list[Path]:
        """Spool files waiting for replay, oldest first (claimed files included)."""
        if not self.directory.is_dir():
            return []
        return sorted(
            path
            for path in self.directory.iterdir()
            if path.name.endswith(SUFFIX) or path.name.endswith(SUFFIX + CLAIMED)
        )

    def size(self) -> int:
        total = 0
        for path in self.files():
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                continue
        return total

    def count(self) -> int:
        """Records waiting in the spool (counts lines; for status and doctor)."""
        lines = 0
        for path in self.files():
            try:
                with path.open("rb") as handle:
                    lines += sum(1 for line in handle if line.strip())
            except FileNotFoundError:
                continue
        return lines

    def write(self, records: Sequence[Wire]) -> Path:
        """Append ``records`` durably; raises ``OSError`` (``SpoolFull`` at the cap)."""
        data = b"".join(orjson.dumps(record) + b"\n" for record in records)
        with self._lock:
            size = self.size()
            if size + len(data) > self.max_bytes:
                raise SpoolFull(
                    f"spool {self.directory} is full ({size} of {self.max_bytes} bytes, "
                    f"spool_max_bytes); replay it with `agentlog replay` or raise the cap"
                )
            self.directory.mkdir(parents=True, exist_ok=True)
            self._sequence += 1
            stamp = utcnow().strftime("%Y%m%dT%H%M%S%f")
            path = self.directory / f"spool-{stamp}-{os.getpid()}-{self._sequence}{SUFFIX}"
            with path.open("ab") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        return path

    def _claim(self, path: Path) -> Path | None:
        if path.name.endswith(CLAIMED):
            return path  # left by a replay that died: idempotent inserts make a retry safe
        claimed = path.with_name(path.name + CLAIMED)
        try:
            path.rename(claimed)
        except FileNotFoundError:
            return None  # another process claimed it first
        return claimed

    def _read(self, path: Path, report: ReplayReport) -> Iterator[Wire]:
        original = path.name.removesuffix(CLAIMED)
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    where = f"{original}:{number}"
                    report.corrupt.append(where)
                    counters.incr("errors")
                    logger.error("agentlog: skipped corrupt spool line %s (%s)", where, exc)
                    continue
                yield record

    def replay(
        self,
        insert: Callable[[Sequence[Wire]], int],
        *,
        batch_size: int = 500,
        progress: Callable[[int], None] | None = None,
    ) -> ReplayReport:
        """Insert every spooled record through ``insert``; delete each file once committed."""
        report = ReplayReport()
        for path in self.files():
            claimed = self._claim(path)
            if claimed is None:
                continue
            report.files += 1
            try:
                batch: list[Wire] = []
                for record in self._read(claimed, report):
                    batch.append(record)
                    if len(batch) >= batch_size:
                        report.inserted += insert(batch)
                        report.records += len(batch)
                        if progress:
                            progress(len(batch))
                        batch = []
                if batch:
                    report.inserted += insert(batch)
                    report.records += len(batch)
                    if progress:
                        progress(len(batch))
            except Exception as exc:
                # Put the file back for the next replay; rows already committed
                # are skipped then by the idempotent insert.
                report.failed.append(f"{claimed.name}: {exc}")
                claimed.rename(claimed.with_name(claimed.name.removesuffix(CLAIMED)))
                logger.warning("agentlog: spool replay of %s stopped: %s", claimed.name, exc)
                break
            claimed.unlink(missing_ok=True)
        if report.records:
            logger.info(
                "agentlog: replayed %d spooled records from %d files (%d new rows)",
                report.records,
                report.files,
                report.inserted,
            )
        return report


_spools: dict[tuple[Path, int], Spool] = {}


def forget_spools() -> None:
    """Drop the cached spools and their replay state (test harnesses)."""
    _spools.clear()


def get_spool(directory: Path, max_bytes: int) -> Spool:
    key = (Path(directory), max_bytes)
    spool = _spools.get(key)
    if spool is None:
        spool = _spools[key] = Spool(Path(directory), max_bytes)
    return spool


# A lock held by another thread at fork time would stay held in the child.
os.register_at_fork(after_in_child=forget_spools)
