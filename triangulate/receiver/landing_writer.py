"""Durable appends to the landing zone: group commit, rotation, sealing, crash recovery.

A request is answered 2xx only after its lines are on disk. One ``fdatasync`` per
request would cap throughput at the disk's sync rate, so appends are *group
committed*: while one write+sync runs (in a dedicated thread, so the event loop keeps
accepting requests), new lines queue up, and the next write takes them all at once.
Under load a sync covers many requests; when idle a request waits for one sync only.

Files follow :mod:`triangulate.landing`: the writer appends to
``receiver-<time>-<hex>.ndjson.open`` and seals it by an atomic rename to ``.ndjson``
when it passes ``rotate_bytes`` or is ``rotate_seconds`` old (and on shutdown). The
directory is fsync'd after each create and rename, so neither is lost in a power cut.

The writer holds an exclusive ``flock`` on its open file. After a crash (even
``kill -9``) the lock is gone, and :func:`recover_open_files` (run at startup) finds the
leftover file, truncates it after the last complete, parseable line and seals it; a
file still locked belongs to a live receiver and is left alone. A partial last line
never had its 2xx (the sync that would have covered it did not finish), so dropping it
loses nothing that was acknowledged.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from triangulate.landing import NDJSON_SUFFIX, OPEN_SUFFIX, landing_file_name

RECEIVER_FILE_PREFIX = "receiver"
"""File name prefix of the receiver's files; recovery touches only these."""

log = logging.getLogger("triangulate.receiver.landing")


def fsync_directory(folder: Path) -> None:
    """Make a create or rename inside ``folder`` durable (POSIX needs the directory synced)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def complete_prefix_length(data: bytes) -> int:
    """Bytes at the start of ``data`` that are whole lines, each one valid JSON.

    Stops at the first line without its ``\\n`` or that does not parse (a torn write can
    leave zeros after a power cut), so what is kept always loads line by line.
    """
    kept = 0
    while kept < len(data):
        end = data.find(b"\n", kept)
        if end < 0:
            break
        try:
            json.loads(data[kept:end])
        except ValueError:
            break
        kept = end + 1
    return kept


@dataclass(frozen=True)
class RecoveredFile:
    """What startup recovery did with one leftover ``.open`` file."""

    open_path: Path
    sealed_path: Path | None  # None: nothing complete in it, removed
    kept_bytes: int
    dropped_bytes: int


def recover_open_files(folder: Path, prefix: str = RECEIVER_FILE_PREFIX) -> list[RecoveredFile]:
    """Seal every ``<prefix>-*.ndjson.open`` in ``folder`` left by a receiver that died.

    Each is truncated after its last complete JSON line and renamed to ``.ndjson``; one
    with no complete line is deleted. Files locked by a live writer are skipped.
    """
    recovered: list[RecoveredFile] = []
    if not folder.is_dir():
        return recovered
    for open_path in sorted(folder.glob(f"{prefix}-*{NDJSON_SUFFIX}{OPEN_SUFFIX}")):
        fd = os.open(open_path, os.O_RDWR | os.O_CLOEXEC)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            data = b""
            while chunk := os.read(fd, 1 << 20):
                data += chunk
            kept = complete_prefix_length(data)
            if kept < len(data):
                os.ftruncate(fd, kept)
                os.fsync(fd)
            sealed_path: Path | None = open_path.with_name(open_path.name[: -len(OPEN_SUFFIX)])
            if kept:
                os.rename(open_path, sealed_path)
            else:
                os.unlink(open_path)
                sealed_path = None
        finally:
            os.close(fd)
        fsync_directory(folder)
        result = RecoveredFile(open_path, sealed_path, kept, len(data) - kept)
        log.warning(
            "recovered open landing file",
            extra={
                "fields": {
                    "file": open_path.name,
                    "sealed_as": sealed_path.name if sealed_path else None,
                    "kept_bytes": result.kept_bytes,
                    "dropped_bytes": result.dropped_bytes,
                }
            },
        )
        recovered.append(result)
    return recovered


@dataclass
class _OpenFile:
    fd: int
    open_path: Path
    sealed_path: Path
    opened_at: float  # time.monotonic()
    size: int = 0
    records: int = 0


class GroupCommitWriter:
    """Appends NDJSON lines to one landing folder; :meth:`append` returns once they are synced.

    Use from one event loop. File operations run in the writer's own thread, one at a
    time, so they never interleave. Call :meth:`seal_if_due` periodically for time-based
    rotation and :meth:`close` on shutdown.
    """

    def __init__(
        self,
        folder: Path,
        *,
        rotate_bytes: int,
        rotate_seconds: float,
        prefix: str = RECEIVER_FILE_PREFIX,
    ) -> None:
        self.folder = folder
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.prefix = prefix
        self.commits = 0  # write+sync rounds, for logs and benchmarks
        self.records = 0
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"landing-{folder.name}"
        )
        self._pending: list[bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._file: _OpenFile | None = None
        folder.mkdir(parents=True, exist_ok=True)

    async def append(self, lines: Sequence[bytes]) -> None:
        """Queue ``lines`` (each ending in ``\\n``, kept together) and wait until synced.

        Raises ``OSError`` if the write or the sync failed; then none of ``lines`` is in
        a sealed file.
        """
        if not lines:
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._pending.extend(lines)
        self._waiters.append(waiter)
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush_until_empty())
        # shield: a client that hangs up cancels its handler, not the commit it joined
        await asyncio.shield(waiter)

    async def _flush_until_empty(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                lines, self._pending = self._pending, []
                waiters, self._waiters = self._waiters, []
                try:
                    await loop.run_in_executor(self._executor, self._write_and_sync, lines)
                except OSError as exc:
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_exception(exc)
                else:
                    self.commits += 1
                    self.records += len(lines)
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_result(None)
        finally:
            self._flusher = None

    async def seal_if_due(self) -> None:
        """Seal the open file if it is ``rotate_seconds`` old, so loads see data promptly."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._seal_if_due)

    async def close(self) -> None:
        """Finish queued commits, seal the open file, stop the writer thread."""
        while self._flusher is not None:
            await asyncio.shield(self._flusher)
        await asyncio.get_running_loop().run_in_executor(self._executor, self._seal)
        self._executor.shutdown(wait=True)

    # --- below: runs only in the writer thread -------------------------------------

    def _open(self) -> _OpenFile:
        name = landing_file_name(self.prefix)
        sealed_path = self.folder / name
        open_path = self.folder / (name + OPEN_SUFFIX)
        fd = os.open(
            open_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644
        )
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fsync_directory(self.folder)
        return _OpenFile(fd, open_path, sealed_path, time.monotonic())

    def _seal(self) -> None:
        """Rename the open file to its final name (still locked), sync the folder, close."""
        f, self._file = self._file, None
        if f is None:
            return
        try:
            if f.size:
                os.rename(f.open_path, f.sealed_path)
            else:
                os.unlink(f.open_path)
            fsync_directory(self.folder)
        finally:
            os.close(f.fd)
        if f.size:
            log.info(
                "sealed landing file",
                extra={
                    "fields": {"file": f.sealed_path.name, "records": f.records, "bytes": f.size}
                },
            )

    def _seal_if_due(self) -> None:
        if (
            self._file is not None
            and time.monotonic() - self._file.opened_at >= self.rotate_seconds
        ):
            self._seal()

    def _write_and_sync(self, lines: list[bytes]) -> None:
        data = b"".join(lines)
        f = self._file
        if (
            f is not None
            and f.size
            and (
                f.size + len(data) > self.rotate_bytes
                or time.monotonic() - f.opened_at >= self.rotate_seconds
            )
        ):
            self._seal()
            f = None
        if f is None:
            f = self._file = self._open()
        try:
            view = memoryview(data)
            while view:
                written = os.write(f.fd, view)
                view = view[written:]
            os.fdatasync(f.fd)
        except OSError:
            self._abandon_failed_commit(f)
            raise
        f.size += len(data)
        f.records += len(lines)

    def _abandon_failed_commit(self, f: _OpenFile) -> None:
        """After a failed write or sync, cut the file back to its last synced size and seal it.

        Its earlier content was synced by earlier commits. If even that fails, close it
        unsealed: startup recovery will truncate and seal it.
        """
        log.error(
            "landing write failed", extra={"fields": {"file": f.open_path.name}}, exc_info=True
        )
        try:
            os.ftruncate(f.fd, f.size)
            os.fsync(f.fd)
        except OSError:
            self._file = None
            os.close(f.fd)
            return
        try:
            self._seal()  # closes the file even when the rename fails
        except OSError:
            log.error(
                "sealing after a failed write failed", extra={"fields": {"file": f.open_path.name}}
            )
