"""The receiver's durable writer: group commit, rotation, sealing, and crash recovery."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import time
from pathlib import Path

import pytest

from triangulate.landing import ndjson_line
from triangulate.receiver.landing_writer import (
    GroupCommitWriter,
    complete_prefix_length,
    recover_open_files,
)


def line(i: int, pad: int = 0) -> bytes:
    return ndjson_line({"i": i, "pad": "x" * pad})


def sealed_records(folder: Path) -> list[int]:
    """Record numbers in sealed files, in file-name order; every line must parse."""
    return [
        json.loads(text)["i"]
        for path in sorted(folder.glob("*.ndjson"))
        for text in path.read_text().splitlines()
    ]


def test_concurrent_appends_share_one_sync_and_all_land(tmp_path: Path):
    async def scenario() -> GroupCommitWriter:
        writer = GroupCommitWriter(tmp_path, rotate_bytes=1 << 20, rotate_seconds=60)
        await asyncio.gather(*(writer.append([line(i)]) for i in range(200)))
        assert list(tmp_path.glob("*.open")), "the file stays open until rotation or close"
        await writer.close()
        return writer

    writer = asyncio.run(scenario())
    assert sorted(sealed_records(tmp_path)) == list(range(200))
    assert writer.records == 200
    assert writer.commits <= 2, (
        f"group commit should batch 200 concurrent appends, took {writer.commits} syncs"
    )
    assert not list(tmp_path.glob("*.open"))


def test_lines_of_one_append_stay_together_and_in_order(tmp_path: Path):
    async def scenario() -> None:
        writer = GroupCommitWriter(tmp_path, rotate_bytes=1 << 20, rotate_seconds=60)
        await asyncio.gather(
            *(writer.append([line(10 * k + j) for j in range(10)]) for k in range(20))
        )
        await writer.close()

    asyncio.run(scenario())
    records = sealed_records(tmp_path)
    for start in range(0, 200, 10):
        block = records[start : start + 10]
        assert block == list(range(block[0], block[0] + 10))


def test_rotation_by_size_seals_files_under_the_limit(tmp_path: Path):
    async def scenario() -> None:
        writer = GroupCommitWriter(tmp_path, rotate_bytes=1000, rotate_seconds=60)
        for i in range(50):
            await writer.append([line(i, pad=80)])
        await writer.close()

    asyncio.run(scenario())
    files = sorted(tmp_path.glob("*.ndjson"))
    assert len(files) >= 5
    assert all(path.stat().st_size <= 1000 for path in files)
    assert sorted(sealed_records(tmp_path)) == list(range(50))
    assert all(path.name.startswith("receiver-") for path in files)


def test_rotation_by_time_seals_an_idle_file(tmp_path: Path):
    async def scenario() -> None:
        writer = GroupCommitWriter(tmp_path, rotate_bytes=1 << 20, rotate_seconds=0.05)
        await writer.append([line(1)])
        await writer.seal_if_due()
        assert list(tmp_path.glob("*.open")), "not yet due"
        await asyncio.sleep(0.08)
        await writer.seal_if_due()
        assert not list(tmp_path.glob("*.open"))
        assert sealed_records(tmp_path) == [1]
        await writer.close()

    asyncio.run(scenario())


def test_a_writer_that_never_wrote_leaves_no_file(tmp_path: Path):
    async def scenario() -> None:
        writer = GroupCommitWriter(tmp_path, rotate_bytes=1000, rotate_seconds=60)
        await writer.append([])
        await writer.close()

    asyncio.run(scenario())
    assert list(tmp_path.iterdir()) == []


def test_failed_sync_raises_and_keeps_earlier_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    real_fdatasync = os.fdatasync
    calls = {"n": 0}

    def fail_second_sync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        real_fdatasync(fd)

    monkeypatch.setattr(os, "fdatasync", fail_second_sync)

    async def scenario() -> None:
        writer = GroupCommitWriter(tmp_path, rotate_bytes=1 << 20, rotate_seconds=60)
        await writer.append([line(1)])
        with pytest.raises(OSError, match="No space"):
            await writer.append([line(2)])
        await writer.append([line(3)])
        await writer.close()

    asyncio.run(scenario())
    assert sorted(sealed_records(tmp_path)) == [1, 3]
    assert len(list(tmp_path.glob("*.ndjson"))) == 2, (
        "the failed file is sealed, the next append opens a new one"
    )


# --- recovery ----------------------------------------------------------------------


def test_complete_prefix_stops_at_a_torn_or_garbage_line():
    good = b'{"a":1}\n{"b":2}\n'
    assert complete_prefix_length(good) == len(good)
    assert complete_prefix_length(good + b'{"c":') == len(good)
    assert complete_prefix_length(good + b"\0\0\0\n" + b'{"d":4}\n') == len(good)
    assert complete_prefix_length(b"") == 0
    assert complete_prefix_length(b'{"a"') == 0


def test_recovery_truncates_at_the_last_complete_line_and_seals(tmp_path: Path):
    torn = tmp_path / "receiver-20261123T000000-aaaaaaaa.ndjson.open"
    torn.write_bytes(b'{"i":1}\n{"i":2}\n{"i":3,"pa')
    empty = tmp_path / "receiver-20261123T000001-bbbbbbbb.ndjson.open"
    empty.write_bytes(b'{"half')
    foreign = tmp_path / "simulator-20261123T000000-cccccccc.ndjson.open"
    foreign.write_bytes(b'{"x"')

    results = {r.open_path.name: r for r in recover_open_files(tmp_path)}

    assert set(results) == {torn.name, empty.name}
    sealed = tmp_path / "receiver-20261123T000000-aaaaaaaa.ndjson"
    assert sealed.read_bytes() == b'{"i":1}\n{"i":2}\n'
    assert (results[torn.name].kept_bytes, results[torn.name].dropped_bytes) == (16, 10)
    assert results[empty.name].sealed_path is None and not empty.exists()
    assert foreign.exists(), "only the receiver's own files are recovered"
    assert recover_open_files(tmp_path) == []


def test_recovery_leaves_a_live_writers_file_alone(tmp_path: Path):
    live = tmp_path / "receiver-20261123T000000-dddddddd.ndjson.open"
    live.write_bytes(b'{"i":1}\n')
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert recover_open_files(tmp_path) == []
        assert live.exists()
    finally:
        os.close(fd)
    assert [r.sealed_path.name for r in recover_open_files(tmp_path)] == [
        live.name.removesuffix(".open")
    ]


def test_writer_holds_its_lock_until_sealed(tmp_path: Path):
    async def scenario() -> None:
        writer = GroupCommitWriter(tmp_path, rotate_bytes=1 << 20, rotate_seconds=60)
        await writer.append([line(1)])
        # a second receiver starting now must not seal this writer's file
        assert await asyncio.to_thread(recover_open_files, tmp_path) == []
        await writer.append([line(2)])
        await writer.close()

    started = time.monotonic()
    asyncio.run(scenario())
    assert sealed_records(tmp_path) == [1, 2]
    assert time.monotonic() - started < 5
