"""Raw loads on Spark (``TRIANGULATE_WAREHOUSE=spark``) give what they give on DuckDB: the
same raw rows (key columns, payload, ``_file``, ``_line``), the same ledger, and the same
handling of bad files (dead letters, quarantine, messages naming file and line).

The small world's whole landing zone is compared end to end in tests/test_spark_pipeline.py
(its raw tables and ledger after the pipeline ran on each engine); here, small landing
zones of bad files and an edited reference file."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from triangulate import ingest
from triangulate.warehouse import as_session, connect

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def duck(tmp_path_factory):
    conn = duckdb.connect(str(tmp_path_factory.mktemp("duck") / "warehouse.duckdb"))
    yield as_session(conn)
    conn.close()


@pytest.fixture(scope="module")
def spark(spark_home):
    with connect() as session:
        assert session.engine == "spark"
        yield session


def _table(session, table: str) -> pd.DataFrame:
    """A raw table's rows in a comparable form: sorted by file and line, NULL as None,
    payload parsed, ``_loaded_at`` left out."""
    frame = session.query(f"select * from {table}").drop(columns="_loaded_at")
    frame = frame.sort_values(["_file", "_line"]).reset_index(drop=True)
    frame["_line"] = frame["_line"].astype("int64")
    frame["payload"] = frame["payload"].map(json.loads)
    return frame.astype(object).where(frame.notna(), None)


def _rows(session, sql: str, params=None) -> list[tuple]:
    return sorted(
        tuple(None if pd.isna(v) else (int(v) if hasattr(v, "item") else v) for v in row)
        for row in session.execute(sql, params).fetchall()
    )


def _outcome(result: ingest.LoadResult) -> tuple:
    return (
        result.files_loaded,
        result.rows_loaded,
        result.files_skipped,
        result.errors,
        result.rows_dead_lettered,
        result.still_quarantined,
        result.warnings,
    )


def _bad_landing(root: Path, small_world: Path) -> Path:
    """A landing zone of bad files (beside good records), named apart from the small world's."""
    landing = root / "landing"
    events = landing / "events"
    events.mkdir(parents=True)
    real = next(iter(sorted((small_world / "landing/events").glob("*.ndjson"))))
    good = real.read_text().splitlines()[:40]
    record = json.loads(good[0])
    lines = [
        *good[:10],
        json.dumps({**record, "timestamp": "yesterday-ish"}),  # fails the timestamp check
        json.dumps({k: v for k, v in record.items() if k != "messageId"}),  # missing field
        "[1, 2, 3]",  # JSON, not an object
        "",  # blank line
        *good[10:],
    ]
    (events / "bad-mixed.ndjson").write_text("\n".join(lines) + "\n" + good[0][:37])  # torn
    (events / "bad-empty.ndjson").write_text("")
    (events / "bad-gzip.ndjson.gz").write_bytes(b"\x1f\x8b not really gzip")
    (events / "good-blank-lines.ndjson").write_text("\n".join([good[0], "", "", good[1]]) + "\n")
    with gzip.open(events / "good.ndjson.gz", "wt") as fh:
        fh.write("\n".join(good[20:30]) + "\n")
    offline = landing / "offline"
    offline.mkdir()
    header = "date,channel,campaign,geo,spend,currency,impressions,clicks"
    (offline / "bad-date.csv").write_text(
        f"{header}\n"
        "2025-01-01,radio,r1,501,10.5,USD,,\n"
        "2025-13-45,radio,r1,501,11.0,USD,100,2\n"
        "2025-01-03,radio,r1,501,n/a,USD, ,x\n"
        "2025-01-04,tv,t1,501,12,USD,7,1\n"
    )
    (offline / "bad-width.csv").write_text(
        f"{header}\n2025-01-01,radio,r1,501,10.5,USD,,\n2025-01-02,radio,r1\n2025-01-03,tv,t,501,1,USD,,\n"
    )
    (offline / "bad-header-only.csv").write_text(f"{header}\n")
    (offline / "bad-missing-column.csv").write_text("date,channel\n2025-01-01,radio\n")
    meta = landing / "ads/meta"
    meta.mkdir(parents=True)
    real_meta = sorted((small_world / "landing/ads/meta").glob("*.json"))[0].read_text()
    (meta / "bad-truncated.json").write_text(real_meta[: len(real_meta) // 2])
    (meta / "bad-no-data.json").write_text(json.dumps({"paging": {}}))
    (meta / "bad-missing-field.json").write_text(
        json.dumps({"data": [{**json.loads(real_meta)["data"][0], "spend": None}]})
    )
    experiments = landing / "experiments"
    experiments.mkdir()
    (experiments / "bad.yaml").write_text(
        "- id: x1\n  channel: meta\n  kind: geo_holdout\n  treatment_geos: ['501']\n"
        "  start: 2025-13-45\n  end: 2025-02-01\n  metric: revenue\n"
        "- id: x2\n  channel: meta\n  kind: geo_holdout\n  treatment_geos: ['501', '502']\n"
        "  start: 2025-01-01\n  end: 2025-02-01\n  metric: revenue\n"
    )
    return landing


_BAD_SOURCES = ("events", "offline", "meta", "experiments")


def _bad_state(session, landing: Path) -> dict:
    files = [str(p.relative_to(landing)) for p in landing.rglob("*") if p.is_file()]
    marks = ", ".join("?" * len(files))
    return {
        "dead": _rows(
            session,
            f"select source, file, line, field, reason, raw_text from raw._dead_letter where file in ({marks})",
            files,
        ),
        "quarantined": _rows(
            session,
            f"select source, file, sha256, error from raw._quarantined_files where file in ({marks})",
            files,
        ),
        "ledger": _rows(
            session,
            f"select source, file, size, mtime_ns, sha256, rows from raw._loaded_files where file in ({marks})",
            files,
        ),
    }


def test_bad_files_are_handled_as_on_duckdb(tmp_path, small_world, duck, spark):
    landing = _bad_landing(tmp_path, small_world)
    results = {}
    for engine, session in (("duckdb", duck), ("spark", spark)):
        results[engine] = {
            name: _outcome(ingest.load_source(session, ingest.SOURCES_BY_NAME[name], landing))
            for name in _BAD_SOURCES
        }
    assert results["spark"] == results["duckdb"]
    events = results["duckdb"]["events"]
    assert events[4] >= 4 and len(events[3]) == 2  # dead letters; empty + broken gzip
    assert len(results["duckdb"]["offline"][3]) == 2  # header only, missing column
    assert len(results["duckdb"]["meta"][3]) >= 2  # truncated, no data
    assert _bad_state(spark, landing) == _bad_state(duck, landing)
    for name in _BAD_SOURCES:
        table = ingest.SOURCES_BY_NAME[name].table
        files = [str(p.relative_to(landing)) for p in landing.rglob("*") if p.is_file()]
        expected = _table(duck, table)
        got = _table(spark, table)
        expected = expected[expected["_file"].isin(files)].reset_index(drop=True)
        got = got[got["_file"].isin(files)].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, obj=table)


def test_touched_and_edited_reference_file_as_on_duckdb(tmp_path, small_world, duck, spark):
    """A touched, unchanged file only moves its ledger mtime (an update: a rewrite on
    Spark); an edited reference file replaces its rows (a delete: a rewrite on Spark)."""
    source = ingest.SOURCES_BY_NAME["reference_geos"]
    rel = "reference/geos.csv"
    outcomes = {}
    for engine, session in (("duckdb", duck), ("spark", spark)):
        landing = tmp_path / engine
        shutil.copytree(small_world / "landing/reference", landing / "reference")  # mtimes kept
        geos = landing / rel
        steps = [_outcome(ingest.load_source(session, source, landing))]  # loaded
        os.utime(geos, ns=(time.time_ns(), geos.stat().st_mtime_ns + 10**9))
        steps.append(_outcome(ingest.load_source(session, source, landing)))  # touched
        ledger = "select mtime_ns, rows from raw._loaded_files where file = ?"
        assert _rows(session, ledger, [rel]) == [(geos.stat().st_mtime_ns, 16)]
        text = geos.read_text()
        geos.write_text(text + text.splitlines()[1] + "\n")  # a person adds a row
        steps.append(_outcome(ingest.load_source(session, source, landing)))
        assert _rows(session, ledger, [rel]) == [(geos.stat().st_mtime_ns, 17)]
        steps.append(_rows(session, f"select count(*), max(_line) from {source.table}"))
        outcomes[engine] = steps
    assert outcomes["spark"] == outcomes["duckdb"]
    assert outcomes["duckdb"][-1] == [(17, 18)]
