"""Issue #21's acceptance: ``TRIANGULATE_WAREHOUSE=spark`` runs the ``small`` world end to
end on a local Spark session and gives what DuckDB gives.

One module, two homes holding the same landing zone (the small world's, plus two bad
files: an NDJSON events file whose last line is torn, dead-lettered, and an empty CSV,
quarantined). The whole pipeline (``materialize_selection("*")``: raw loads, gates, dbt,
MTA, MMM with the fast test settings) runs once on DuckDB and once on Spark, each in a
process of its own; both succeed (the wall time of each is printed).
Then, read through the warehouse seam on each engine:

- every raw table (keys, payload, ``_file``, ``_line``) and the ledger are equal;
- the bad files are handled alike: the same dead letters and quarantine entries, with the
  same messages (naming file and line);
- every ``marts.*`` table has the same row count and, for each money (DECIMAL) column,
  exactly the same sum; ``marts.mmm_weekly_input`` is identical row by row;
- the MTA tables are equal to 1e-9 (relative);
- every gate passed, on the same tables and row counts;
- the MMM's measurement tables exist on Spark with the contract's columns (the fit is a
  sampler's: its numbers are not compared).

This replaces the slower piecewise comparisons (dbt on copied raw tables; raw loads of the
small world on their own).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.dbt_fixtures import world_tools
from tests.test_ingest_spark import _rows, _table
from tests.test_pipeline import FAST_MMM, _empty_file, _truncated_events
from triangulate import ingest
from triangulate.contracts import GEO_MODEL_TABLES, MEASUREMENT_COLUMNS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

ENGINES = ("duckdb", "spark")
MTA_TABLES = (
    "measurement.mta_channel_credit",
    "measurement.mta_campaign_credit",
    "measurement.mta_conversion_summary",
)
"""MTA's own results: a function of the marts alone, so equal across engines to 1e-9."""
CALIBRATED = "measurement.mta_calibrated_daily"
"""MTA re-weighted by factors that may come from the MMM (a sampler's fit): its MTA columns
are compared, its factors are not."""
MMM_TABLES = tuple(
    t
    for t in MEASUREMENT_COLUMNS
    if t.startswith(("measurement.mmm_", "measurement.budget_plan")) and t not in GEO_MODEL_TABLES
)
"""The MMM's contract tables; a run publishes those its model and history call for (a
national model, a first run: no geo or run-over-run tables), the same on both engines."""
BAD_FILES = ("events/events-late.ndjson", "offline/empty.csv")


ROOT = Path(__file__).resolve().parents[1]
RUN_PIPELINE = (
    "import sys\n"
    "from dagster_project.runner import materialize_selection\n"
    "sys.exit(0 if materialize_selection('*') else 1)\n"
)
"""The whole pipeline in a process of its own: an engine per process, as ``triangulate run``
has it (the dbt resource takes its target from the engine when the definitions load)."""


def _engine_env(mp: pytest.MonkeyPatch, home: Path, engine: str) -> None:
    mp.setenv("TRIANGULATE_HOME", str(home))
    mp.setenv("TRIANGULATE_MMM_CONFIG", str(FAST_MMM))
    if engine == "spark":
        mp.setenv("TRIANGULATE_WAREHOUSE", "spark")
        mp.setenv("PYSPARK_PYTHON", sys.executable)
    else:
        mp.delenv("TRIANGULATE_WAREHOUSE", raising=False)
    mp.delenv("TRIANGULATE_DBT_TARGET", raising=False)  # the target follows the warehouse


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory, small_world: Path) -> dict[str, Path]:
    """The pipeline run on each engine over the same landing zone; engine -> its home."""
    pytest.importorskip("pyspark")
    root = tmp_path_factory.mktemp("spark_pipeline")
    landing = root / "landing"  # one copy of the bad files: the same bytes and mtimes
    shutil.copytree(small_world / "landing", landing)
    _truncated_events(landing)
    _empty_file(landing)
    homes = {}
    for engine in ENGINES:
        home = root / engine
        home.mkdir()
        shutil.copytree(landing, home / "landing")  # copy2: mtimes kept, so ledgers agree
        shutil.copytree(small_world / "truth", home / "truth")
        homes[engine] = home
    timings = {}
    for engine, home in homes.items():
        with pytest.MonkeyPatch.context() as mp:
            _engine_env(mp, home, engine)
            started = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-c", RUN_PIPELINE], cwd=ROOT, capture_output=True, text=True
            )
            timings[engine] = time.monotonic() - started
        log = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"the pipeline failed on {engine}:\n{log[-20000:]}"
    print(
        "small world end to end: "
        + ", ".join(f"{engine} {seconds:.0f}s" for engine, seconds in timings.items())
    )
    return homes


@pytest.fixture(scope="module")
def read(homes: dict[str, Path]):
    """``read(engine, fn)``: ``fn(session)`` on that engine's warehouse, read-only."""
    from triangulate.warehouse import connect, spark_engine

    def on(engine: str, fn):
        with pytest.MonkeyPatch.context() as mp:
            _engine_env(mp, homes[engine], engine)
            with connect(read_only=True) as session:
                assert session.engine == engine
                return fn(session)

    yield on
    spark_engine.stop()


def _both(read, fn) -> dict[str, object]:
    return {engine: read(engine, fn) for engine in ENGINES}


def test_raw_tables_and_the_ledger_equal_duckdbs(read) -> None:
    def raw(session) -> dict:
        return {
            "tables": {s.table: _table(session, s.table) for s in ingest.SOURCES},
            "ledger": _rows(
                session, "select source, file, size, mtime_ns, sha256, rows from raw._loaded_files"
            ),
        }

    got = _both(read, raw)
    duck, spark = got["duckdb"], got["spark"]
    assert sum(len(f) for f in duck["tables"].values()) > 100_000
    for table, expected in duck["tables"].items():
        assert list(spark["tables"][table].columns) == list(expected.columns), table
        pd.testing.assert_frame_equal(spark["tables"][table], expected, obj=table)
    assert duck["ledger"] and spark["ledger"] == duck["ledger"]


def test_bad_files_are_dead_lettered_and_quarantined_alike(read) -> None:
    marks = ", ".join("?" * len(BAD_FILES))

    def bad(session) -> dict:
        return {
            "dead": _rows(
                session,
                "select source, file, line, field, reason, raw_text from raw._dead_letter",
            ),
            "quarantined": _rows(
                session, "select source, file, sha256, error from raw._quarantined_files"
            ),
            "loaded": _rows(
                session,
                f"select file, rows from raw._loaded_files where file in ({marks})",
                list(BAD_FILES),
            ),
            "late_rows": _rows(
                session,
                "select _line from raw.segment_events where _file = ?",
                [BAD_FILES[0]],
            ),
        }

    got = _both(read, bad)
    assert got["spark"] == got["duckdb"]
    duck = got["duckdb"]
    assert [(d[1], d[2]) for d in duck["dead"]] == [(BAD_FILES[0], 5)]
    assert "line 5 is not valid JSON" in duck["dead"][0][4]
    assert [q[1] for q in duck["quarantined"]] == [BAD_FILES[1]]
    assert duck["quarantined"][0][3].startswith(f"landing/{BAD_FILES[1]}: file is empty")
    assert duck["loaded"] == [(BAD_FILES[0], 4)]
    assert duck["late_rows"] == [(1,), (2,), (3,), (4,)]


def _decimal_columns(session, table: str) -> list[str]:
    return [n for n, kind in session.columns(table) if str(kind).upper().startswith("DECIMAL")]


def _exact_sums(session) -> dict[str, tuple]:
    """Each mart -> (row count, the exact sum of each money column), decimals as text."""
    text = session.sql_type("varchar")
    totals = {}
    for name in session.tables("marts"):
        table = f"marts.{name}"
        money = _decimal_columns(session, table)
        sums = "".join(f", cast(sum({session.quote(c)}) as {text})" for c in money)
        row = session.execute(f"select count(*){sums} from {table}").fetchone()
        totals[table] = (
            int(row[0]),
            {c: None if v is None else Decimal(v) for c, v in zip(money, row[1:], strict=True)},
        )
    return totals


class _DbApi:
    """A seam session as the DB-API connection ``dbt_world.mart_totals`` reads."""

    def __init__(self, session) -> None:
        self.session = session
        self.result = None

    def cursor(self) -> _DbApi:
        return self

    def execute(self, sql: str) -> None:
        self.result = self.session.execute(sql)

    def fetchone(self) -> tuple:
        return self.result.fetchone()


def test_every_mart_has_the_same_rows_and_money(read) -> None:
    got = _both(read, lambda s: (_exact_sums(s), world_tools.mart_totals(_DbApi(s))))
    (duck_sums, duck_totals), (spark_sums, spark_totals) = got["duckdb"], got["spark"]
    assert sorted(spark_sums) == sorted(duck_sums)
    assert len(duck_sums) >= 8 and all(n for n, _m in duck_sums.values()), duck_sums
    for table, expected in duck_sums.items():
        assert spark_sums[table] == expected, table
    assert spark_totals == duck_totals


def _mmm_input(session) -> tuple[list[str], list[tuple]]:
    """``marts.mmm_weekly_input`` row by row: decimals exactly (as text), doubles as they
    are, everything else as text."""
    text = session.sql_type("varchar")
    columns = session.columns("marts.mmm_weekly_input")
    select = ", ".join(
        session.quote(n) if "DOUBLE" in str(k).upper() else f"cast({session.quote(n)} as {text})"
        for n, k in columns
    )
    decimal = [str(k).upper().startswith("DECIMAL") for _n, k in columns]
    rows = session.execute(f"select {select} from marts.mmm_weekly_input").fetchall()
    rows = sorted(
        tuple(
            None
            if v is None or (isinstance(v, float) and math.isnan(v))
            else (Decimal(v) if d else (float(v) if isinstance(v, (float, np.floating)) else v))
            for v, d in zip(row, decimal, strict=True)
        )
        for row in rows
    )
    return [n for n, _k in columns], rows


def test_the_mmm_input_is_identical(read) -> None:
    got = _both(read, _mmm_input)
    (duck_columns, duck_rows), (spark_columns, spark_rows) = got["duckdb"], got["spark"]
    assert spark_columns == duck_columns
    assert len(spark_rows) == len(duck_rows) > 0
    different = [(d, s) for d, s in zip(duck_rows, spark_rows, strict=True) if d != s]
    assert not different, f"{len(different)} row(s) differ, e.g. {different[:3]}"


def _sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in frame.columns if not pd.api.types.is_float_dtype(frame[c])]
    frame = frame.sort_values(keys).reset_index(drop=True)
    for c in frame.columns:  # dates: one dtype on both engines
        if pd.api.types.is_datetime64_any_dtype(frame[c]):
            frame[c] = frame[c].dt.tz_localize(None) if frame[c].dt.tz else frame[c]
            frame[c] = frame[c].astype("datetime64[us]")
    return frame


def test_mta_credits_equal_duckdbs(read) -> None:
    """Equal to 1e-9 relative, and money (stored as DECIMAL(28,6)) to one micro-unit: a
    credit whose float lands on a rounding boundary is stored 0.000001 apart (as in
    tests/test_pipeline.py's ``_changed``)."""
    from triangulate.warehouse import read_table

    def mta(session) -> dict[str, pd.DataFrame]:
        frames = {t: read_table(session, t) for t in MTA_TABLES}
        calibrated = read_table(session, CALIBRATED)
        frames[CALIBRATED] = calibrated[
            ["date", "channel", "campaign", "mta_model", "conversions", "revenue"]
        ]
        return {t: _sorted_frame(f.drop(columns=["run_id", "computed_at"], errors="ignore"))
                for t, f in frames.items()}  # fmt: skip

    got = _both(read, mta)
    for table, expected in got["duckdb"].items():
        assert len(expected), table
        pd.testing.assert_frame_equal(
            got["spark"][table], expected, rtol=1e-9, atol=1.5e-6, check_dtype=False, obj=table
        )


def test_every_gate_passed_on_both(read) -> None:
    def gates(session) -> list[tuple]:
        frame = session.query("select table_name, success, rows from measurement.data_quality")
        return sorted(
            ((t, bool(ok), None if pd.isna(n) else int(n))
             for t, ok, n in frame.itertuples(index=False, name=None)),
            key=repr,
        )  # fmt: skip

    got = _both(read, gates)
    assert got["duckdb"], "no gate ran"
    assert all(success for _t, success, _n in got["duckdb"]), got["duckdb"]
    assert got["spark"] == got["duckdb"]


def test_the_mmm_publishes_its_tables_on_spark(read) -> None:
    def structure(session) -> dict[str, tuple]:
        out = {}
        for table in MMM_TABLES:
            if not session.table_exists(table):
                continue
            columns = [n for n, _k in session.columns(table)]
            frame = session.query(f"select * from {table}")
            out[table] = (columns, len(frame))
        return out

    got = _both(read, structure)
    assert sorted(got["spark"]) == sorted(got["duckdb"])
    assert "measurement.mmm_channel_summary" in got["spark"]
    for table, (columns, rows) in got["spark"].items():
        assert rows, f"{table} is empty on Spark"
        assert list(MEASUREMENT_COLUMNS[table]) == columns[: len(MEASUREMENT_COLUMNS[table])]
        assert columns == got["duckdb"][table][0], table
    assert os.environ.get("TRIANGULATE_WAREHOUSE") != "spark"  # the module left no engine set
