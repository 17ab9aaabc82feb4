"""Accepted means kept (issue #19, defects 2 and 5 and the load-time "Also" items): a bad
record is isolated with its reason (``raw._dead_letter``), a file that cannot be parsed at
all is quarantined whole and not retried until it changes or a person releases it, and
neither stops the rest of the load, the raw gates (which decide on a threshold) or the
models downstream."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from triangulate import ingest, quality, quarantine
from triangulate.receiver.landing_writer import RECEIVER_FILE_PREFIX

ROOT = Path(__file__).resolve().parent.parent


def _event(i: int, **extra) -> dict:
    return {
        "type": "track",
        "event": "Page Viewed",
        "messageId": f"m{i}",
        "anonymousId": f"a{i}",
        "timestamp": "2025-01-01T00:00:00Z",
        **extra,
    }


def _load(conn, landing: Path, name: str) -> ingest.LoadResult:
    return ingest.load_source(conn, ingest.SOURCES_BY_NAME[name], landing)


def _dead(conn) -> list[tuple]:
    return conn.execute(
        "select source, file, line, field, reason, raw_text from raw._dead_letter order by file, line"
    ).fetchall()


@pytest.fixture
def conn(tmp_path: Path):
    c = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield c
    c.close()


def test_bad_lines_go_to_the_dead_letter_table_and_the_good_lines_of_the_file_load(
    conn, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    folder = landing / "events"
    folder.mkdir(parents=True)
    good = [json.dumps(_event(i)) for i in range(5)]
    no_timestamp = {k: v for k, v in _event(90).items() if k != "timestamp"}
    lines = [
        good[0],
        '{"type": "track", "messageId": ',  # line 2: not JSON
        good[1],
        json.dumps(no_timestamp),  # line 4: missing a required field
        good[2],
        json.dumps(_event(91)).replace('"Page Viewed"', '"\\ud800"'),  # line 6: lone surrogate
        good[3],
        json.dumps(_event(92, timestamp="yesterday-ish")),  # line 8: not a date-time
        good[4],
    ]
    (folder / "mixed.ndjson").write_text("\n".join(lines) + "\n")
    result = _load(conn, landing, "events")
    assert result.errors == [] and result.files_loaded == ["events/mixed.ndjson"]
    assert result.rows_loaded == 5 and result.rows_dead_lettered == 4
    got = conn.execute("select message_id, _line from raw.segment_events order by _line").fetchall()
    assert got == [("m0", 1), ("m1", 3), ("m2", 5), ("m3", 7), ("m4", 9)]
    dead = _dead(conn)
    assert [(d[1], d[2], d[3]) for d in dead] == [
        ("events/mixed.ndjson", 2, None),
        ("events/mixed.ndjson", 4, "timestamp"),
        ("events/mixed.ndjson", 6, None),
        ("events/mixed.ndjson", 8, "timestamp"),
    ]
    assert "not valid JSON" in dead[0][4] and dead[0][5].startswith('{"type": "track"')
    assert "missing field 'timestamp'" in dead[1][4]
    assert "not valid JSON" in dead[2][4]
    assert "yesterday-ish" in dead[3][4]
    assert conn.execute("select count(*) from raw._quarantined_files").fetchone()[0] == 0
    # loaded once: the next run neither reloads the rows nor dead-letters them again
    again = _load(conn, landing, "events")
    assert again.rows_loaded == 0 and again.files_skipped == 1 and len(_dead(conn)) == 4


def test_a_file_that_is_not_json_is_quarantined_whole_and_retried_only_when_changed_or_released(
    conn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    folder = landing / "events"
    folder.mkdir(parents=True)
    (folder / "good.ndjson").write_text(json.dumps(_event(1)) + "\n")
    bad = folder / "binary.ndjson"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00garbage\nmore garbage\n")
    first = _load(conn, landing, "events")
    assert first.files_loaded == ["events/good.ndjson"] and first.rows_loaded == 1
    assert len(first.errors) == 1 and "events/binary.ndjson" in first.errors[0]
    assert (
        first.rows_dead_lettered == 0
    )  # a file that cannot be parsed is not dead-lettered line by line

    def quarantined() -> list[tuple]:
        return conn.execute("select file from raw._quarantined_files").fetchall()

    assert quarantined() == [("events/binary.ndjson",)]
    # not retried while its content is the same
    second = _load(conn, landing, "events")
    assert second.errors == [] and second.still_quarantined == ["events/binary.ndjson"]
    assert quarantined() == [("events/binary.ndjson",)]

    entries = quarantine.list_entries(conn)
    assert [(e.file, e.status) for e in entries] == [("events/binary.ndjson", "quarantined")]
    assert "not valid JSON" in entries[0].reason

    # released by a person: retried on the next run (and quarantined again: still garbage)
    quarantine.release(conn, "landing/events/binary.ndjson")
    third = _load(conn, landing, "events")
    assert len(third.errors) == 1 and len(quarantined()) == 2

    # changed content: retried without a release, and loads
    bad.write_text(json.dumps(_event(2)) + "\n")
    fourth = _load(conn, landing, "events")
    assert fourth.files_loaded == ["events/binary.ndjson"] and fourth.rows_loaded == 1
    assert quarantine.list_entries(conn) == []
    with pytest.raises(LookupError, match="it is loaded"):  # releasing it would load it twice
        quarantine.release(conn, "events/binary.ndjson")

    # a loaded file dropped by a person leaves its raw table and is not loaded again ...
    def rows(file: str) -> int:
        sql = "select count(*) from raw.segment_events where _file = ?"
        return conn.execute(sql, [file]).fetchone()[0]

    assert "1 loaded row(s) removed" in quarantine.drop(conn, "events/good.ndjson")
    assert rows("events/good.ndjson") == 0 and _load(conn, landing, "events").rows_loaded == 0
    # ... until released
    quarantine.release(conn, "events/good.ndjson")
    assert _load(conn, landing, "events").rows_loaded == 1 and rows("events/good.ndjson") == 1

    # dropped: never loaded, and the drop is recorded
    dropped = folder / "dropped.ndjson"
    dropped.write_text("not json at all\n")
    _load(conn, landing, "events")
    quarantine.drop(conn, "events/dropped.ndjson")
    dropped.write_text(json.dumps(_event(3)) + "\n")  # even a corrected copy under that name
    fifth = _load(conn, landing, "events")
    assert fifth.rows_loaded == 0 and fifth.files_dropped == 1
    assert conn.execute(
        "select action from raw._quarantine_actions where file = 'events/dropped.ndjson'"
    ).fetchall() == [("drop",)]
    assert [(e.file, e.status) for e in quarantine.list_entries(conn, everything=True)] == [
        ("events/binary.ndjson", "loaded"),
        ("events/dropped.ndjson", "dropped"),
        ("events/good.ndjson", "loaded"),
    ]


def test_the_quarantine_command_lists_releases_and_drops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from triangulate.cli import app

    home = tmp_path / "home"
    monkeypatch.setenv("TRIANGULATE_HOME", str(home))
    landing = home / "landing"
    (landing / "controls").mkdir(parents=True)
    (landing / "controls/bad.csv").write_bytes(b"\xff\xfe\x00binary\x00\x00\n\x00\x01\n")
    (landing / "controls/half.csv").write_text(
        "date,geo,name,value\n2025-01-06,501,price,1.0\n2025-01-07,501,price,n/a\n"
    )
    with duckdb.connect(str(home / "warehouse.duckdb")) as c:
        _load(c, landing, "controls")
    runner = CliRunner()
    listed = runner.invoke(app, ["quarantine", "list"])
    assert listed.exit_code == 0, listed.output
    assert "controls/bad.csv" in listed.output and "quarantined" in listed.output
    assert "controls/half.csv" in listed.output and "1" in listed.output  # one row dead-lettered
    released = runner.invoke(app, ["quarantine", "release", "controls/bad.csv"])
    assert released.exit_code == 0 and "released" in released.output
    dropped = runner.invoke(app, ["quarantine", "drop", "landing/controls/bad.csv"])
    assert dropped.exit_code == 0 and "dropped" in dropped.output
    unknown = runner.invoke(app, ["quarantine", "release", "controls/nope.csv"])
    assert unknown.exit_code != 0 and "controls/nope.csv" in unknown.output


def test_a_control_value_n_a_is_dead_lettered_with_file_line_and_field(
    conn, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    (landing / "controls").mkdir(parents=True)
    (landing / "controls/price.csv").write_text(
        "date,geo,name,value\n"
        "2025-01-06,501,price_index,1.02\n"
        "2025-01-07,501,price_index,n/a\n"
        "2025-13-45,501,price_index,1.01\n"
        "2025-01-09,,price_index,\n"
    )
    result = _load(conn, landing, "controls")
    assert result.errors == [] and result.rows_loaded == 2 and result.rows_dead_lettered == 2
    assert [(d[1], d[2], d[3]) for d in _dead(conn)] == [
        ("controls/price.csv", 3, "value"),
        ("controls/price.csv", 4, "date"),
    ]
    assert "'n/a'" in _dead(conn)[0][4]
    # what dbt's staging model does with the rows that loaded
    conn.execute("select cast(date as date), cast(value as double) from raw.controls").fetchall()


def test_an_experiment_date_2025_13_45_names_the_file_entry_and_field(conn, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    (landing / "experiments").mkdir(parents=True)
    entry = textwrap.dedent("""\
        - id: exp-{n}
          channel: tv
          kind: holdout
          treatment_geos: [G01]
          start: {start}
          end: 2025-03-01
          metric: net_revenue
        """)
    (landing / "experiments/registry.yaml").write_text(
        entry.format(n=1, start="2025-02-01") + entry.format(n=2, start="2025-13-45")
    )
    result = _load(conn, landing, "experiments")
    assert result.errors == [] and result.rows_loaded == 1
    (dead,) = _dead(conn)
    assert dead[:4] == ("experiments", "experiments/registry.yaml", 2, "start")
    assert "2025-13-45" in dead[4]
    assert any("experiments/registry.yaml" in w and "start" in w for w in result.warnings)
    conn.execute('select cast(start as date), cast("end" as date) from raw.experiments').fetchall()


def test_a_symlink_out_of_the_landing_zone_is_refused_and_its_content_never_echoed(
    conn, tmp_path: Path
) -> None:
    secret = tmp_path / "outside" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    landing = tmp_path / "landing"
    (landing / "offline").mkdir(parents=True)
    (landing / "offline/spend.csv").symlink_to(secret)
    (landing / "controls").symlink_to(secret.parent, target_is_directory=True)
    (secret.parent / "c.csv").write_text("root:x:0:0:root:/root:/bin/bash\n")
    results = [_load(conn, landing, "offline"), _load(conn, landing, "controls")]
    messages = [m for r in results for m in [*r.errors, *r.warnings]]
    assert any("offline/spend.csv" in m and "outside the landing zone" in m for m in messages)
    assert any("controls/c.csv" in m and "outside the landing zone" in m for m in messages)
    stored = (
        conn.execute("select string_agg(error, ' ') from raw._quarantined_files").fetchone()[0]
        or ""
    )
    everything = " ".join(messages) + stored + " ".join(str(d) for d in _dead(conn))
    assert "root:x" not in everything
    assert conn.execute("select count(*) from raw.offline_spend").fetchone()[0] == 0


def test_an_empty_landing_zone_says_so(conn, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    results = ingest.load_all(conn, landing)
    assert all(r.rows_loaded == 0 for r in results.values())
    assert any("empty" in w and str(landing) in w for r in results.values() for w in r.warnings)


_WRITER = """
import asyncio, json, os, sys, time
from pathlib import Path
from triangulate.receiver.landing_writer import GroupCommitWriter

async def main():
    w = GroupCommitWriter(Path(sys.argv[1]), rotate_bytes=1 << 30, rotate_seconds=3600)
    for i in range(87):
        await w.append([json.dumps({"type": "track", "event": "x", "messageId": f"k{i}",
                        "anonymousId": "a", "timestamp": "2025-01-01T00:00:00Z"}).encode() + b"\\n"])
    print("acknowledged", flush=True)
    time.sleep(600)

asyncio.run(main())
"""


def _start_writer(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "acknowledged"
    return proc


def test_a_dead_writers_open_file_is_sealed_and_loaded_at_load_time(conn, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    folder = landing / "events"
    writer = _start_writer(folder)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    (open_file,) = folder.glob(f"{RECEIVER_FILE_PREFIX}-*.ndjson.open")
    with open(open_file, "ab") as fh:  # the write of an unacknowledged record was torn
        fh.write(b'{"type":"track","messageId":"torn","times')
    old = time.time() - 60
    os.utime(open_file, (old, old))
    result = _load(conn, landing, "events")
    assert result.rows_loaded == 87 and result.rows_dead_lettered == 1 and result.errors == []
    assert not list(folder.glob("*.open"))
    assert any("recovered" in w and open_file.name in w for w in result.warnings)
    (dead,) = _dead(conn)
    assert dead[2] == 88 and "not valid JSON" in dead[4]
    assert conn.execute("select count(distinct message_id) from raw.segment_events").fetchone() == (
        87,
    )


def test_a_live_writers_open_file_is_left_alone_with_a_warning_naming_the_count(
    conn, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    folder = landing / "events"
    writer = _start_writer(folder)
    try:
        result = _load(conn, landing, "events")
        assert result.rows_loaded == 0
        assert any("87 record(s)" in w and "alive" in w for w in result.warnings), result.warnings
        assert len(list(folder.glob("*.open"))) == 1
    finally:
        writer.kill()
        writer.wait(timeout=30)


def _gate(failed_rows: int, n_rows: int = 1000) -> quality.GateResult:
    from datetime import date

    failed = [
        quality.FailedExpectation(
            "expect_column_values_to_not_be_null", "spend", {}, None, failed_rows, []
        )
    ]
    return quality.GateResult(
        table="raw.offline_spend", success=not failed_rows, n_rows=n_rows, n_expectations=5,
        failed=failed if failed_rows else [], today=date(2026, 1, 1), seconds=0.0,
    )  # fmt: skip


def test_a_raw_gate_decides_on_the_share_of_rejected_rows_not_on_one_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert quality.raw_reject_threshold() == quality.RAW_REJECT_THRESHOLD
    one_bad = quality.raw_gate_verdict(_gate(1), dead_lettered=0, threshold=0.01)
    assert one_bad.success and "1 of 1,000" in one_bad.message()
    dead_lettered = quality.raw_gate_verdict(_gate(0), dead_lettered=5, threshold=0.01)
    assert dead_lettered.success
    too_many = quality.raw_gate_verdict(_gate(8), dead_lettered=5, threshold=0.01)
    assert not too_many.success and "1.3%" in too_many.message()
    monkeypatch.setenv(quality.RAW_REJECT_THRESHOLD_ENV, "0.02")
    assert quality.raw_reject_threshold() == 0.02
    missing_column = quality.GateResult(
        table="raw.offline_spend", success=False, n_rows=10, n_expectations=5,
        failed=[quality.FailedExpectation("expect_column_to_exist", "spend", {}, None, None, [])],
        today=_gate(0).today, seconds=0.0,
    )  # fmt: skip
    assert not quality.raw_gate_verdict(missing_column, dead_lettered=0, threshold=0.5).success


def _run(home: Path, select: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRIANGULATE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    return subprocess.run(
        [sys.executable, "-m", "dagster_project.cli", "run", "--select", select],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


@pytest.mark.slow
def test_a_quarantined_file_and_a_few_bad_rows_do_not_stop_the_run(
    home_with_landing: Path,
) -> None:
    home = home_with_landing
    offline = sorted((home / "landing/offline").glob("*.csv"))[0]
    rows = offline.read_text().splitlines()
    header = rows[0]
    (home / "landing/offline/zz-garbage.csv").write_bytes(b"\x00\x01\x02 not a csv \xff\n")
    (home / "landing/offline/zz-one-bad-row.csv").write_text(
        "\n".join([header, rows[1], rows[1].replace(rows[1].split(",")[0], "2025-13-45", 1)]) + "\n"
    )
    selection = 'key:"raw/offline_spend" or key:"raw/experiments"'
    first = _run(home, selection)
    out = first.stdout + first.stderr
    assert first.returncode == 0, out[-4000:]
    assert "zz-garbage.csv" in out
    second = _run(home, selection)  # the quarantined file is not retried, nothing blocks
    assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as c:
        assert c.execute("select count(*) from raw._quarantined_files").fetchone()[0] == 1
        assert c.execute("select count(*) from raw._dead_letter").fetchone()[0] == 1
        passed = c.execute(
            "select success from measurement.data_quality where table_name = 'raw.offline_spend'"
        ).fetchall()
        assert passed and all(p[0] for p in passed)


def test_a_raw_gate_counts_dead_letters_of_its_files_but_not_torn_writes_or_dropped_files(
    conn, tmp_path: Path
) -> None:
    from dagster_project.assets.quality import dead_lettered

    landing = tmp_path / "landing"
    folder = landing / "events"
    folder.mkdir(parents=True)
    good = json.dumps(_event(1))
    (folder / "a.ndjson").write_text(f"{good}\nnot json\n{good}\n" + good[:20])  # 1 bad, 1 torn
    (folder / "b.ndjson").write_text(f"{good}\nnot json either\n")
    _load(conn, landing, "events")
    assert len(_dead(conn)) == 3
    assert dead_lettered(conn, "raw.segment_events", None) == 2
    assert dead_lettered(conn, "raw.segment_events", ["events/a.ndjson"]) == 1
    quarantine.drop(conn, "events/b.ndjson")
    assert dead_lettered(conn, "raw.segment_events", None) == 1
    assert dead_lettered(conn, "marts.fct_orders", None) is None
