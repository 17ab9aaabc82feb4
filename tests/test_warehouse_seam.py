"""The warehouse seam (``triangulate.warehouse.session``): one sequence of writes and reads,
the same assertions, on both engines (DuckDB, the default; Spark, local, under a temporary
``TRIANGULATE_HOME``), and the one setting that picks the engine."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from triangulate.contracts import MONEY_TYPE
from triangulate.warehouse import (
    append_rows,
    connect,
    engine_name,
    latest_published_mmm_run,
    publish_run,
    read_table,
    replace_table,
    table_exists,
)

SUMMARY = "measurement.mmm_channel_summary"  # money: spend, contribution
DIAGNOSTICS = "measurement.mmm_diagnostics"


def test_engine_name_is_one_setting_with_a_clear_error(monkeypatch) -> None:
    monkeypatch.delenv("TRIANGULATE_WAREHOUSE", raising=False)
    assert engine_name() == "duckdb"
    monkeypatch.setenv("TRIANGULATE_WAREHOUSE", "Spark")
    assert engine_name() == "spark"
    monkeypatch.setenv("TRIANGULATE_WAREHOUSE", "snowflake")
    with pytest.raises(ValueError, match=r"TRIANGULATE_WAREHOUSE='snowflake'.*duckdb, spark"):
        engine_name()


@pytest.fixture(scope="module")
def spark_home(tmp_path_factory):
    """One local Spark per module (starting one costs seconds), on its own data directory."""
    from triangulate.warehouse import spark_engine

    home = tmp_path_factory.mktemp("spark_home")
    patch = pytest.MonkeyPatch()
    patch.setenv("TRIANGULATE_HOME", str(home))
    patch.setenv("TRIANGULATE_WAREHOUSE", "spark")
    yield home
    spark_engine.stop()
    patch.undo()


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.slow)])
def session(request, tmp_path, monkeypatch):
    if request.param == "spark":
        home = request.getfixturevalue("spark_home")
        with connect() as s:
            for schema in ("measurement", "marts"):
                if not s.spark.catalog.databaseExists(schema):
                    continue
                for t in s.spark.catalog.listTables(schema):  # Spark's DROP names the kind
                    kind = "view" if t.tableType == "VIEW" else "table"
                    s.execute(f"drop {kind} if exists {schema}.{t.name}")
            assert (home / "spark").is_dir()
            yield s
    else:
        monkeypatch.setenv("TRIANGULATE_HOME", str(tmp_path))
        monkeypatch.delenv("TRIANGULATE_WAREHOUSE", raising=False)
        with connect() as s:
            yield s


def _summary(run_id: str, spend: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": [run_id, run_id],
            "channel": ["search", "tv"],
            "spend": [spend, 0.3],
            "contribution": [1234.56, 0.1 + 0.2],
        }
    )


def _diagnostics(run_id: str, fitted_at: str, published: bool) -> pd.DataFrame:
    return pd.DataFrame(
        {"run_id": [run_id], "fitted_at": [pd.Timestamp(fitted_at)], "published": [published]}
    )


def test_the_same_sequence_on_every_engine(session) -> None:
    assert session.engine == engine_name()

    # replace: money is DECIMAL in the warehouse, float when read back
    assert replace_table(session, "marts.things", pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})) == 2
    assert replace_table(session, "marts.things", pd.DataFrame({"a": [3], "b": ["z"]})) == 1
    assert read_table(session, "marts.things").to_dict("list") == {"a": [3], "b": ["z"]}

    # append: created, appended, other columns refused naming the table
    log = pd.DataFrame({"a": [1], "b": ["x"]})
    append_rows(session, "measurement.log", log)
    append_rows(session, "measurement.log", log.assign(a=2))
    with pytest.raises(ValueError, match=r"measurement\.log: columns \['b', 'a'\] do not match"):
        append_rows(session, "measurement.log", log[["b", "a"]])
    rows = session.execute("select a, b from measurement.log order by a").fetchall()
    assert [tuple(r) for r in rows] == [(1, "x"), (2, "x")]

    # publish two runs; run-b published twice (a retry replaces its rows)
    publish_run(session, "run-a", {SUMMARY: _summary("run-a", 10.0),
                                   DIAGNOSTICS: _diagnostics("run-a", "2026-01-01", True)})  # fmt: skip
    publish_run(session, "run-b", {SUMMARY: _summary("run-b", 99.0),
                                   DIAGNOSTICS: _diagnostics("run-b", "2026-02-01", True)})  # fmt: skip
    publish_run(session, "run-b", {SUMMARY: _summary("run-b", 20.0),
                                   DIAGNOSTICS: _diagnostics("run-b", "2026-02-01", True)})  # fmt: skip
    summary = read_table(session, SUMMARY).sort_values(["run_id", "channel"])
    assert summary["run_id"].tolist() == ["run-a", "run-a", "run-b", "run-b"]
    assert summary["spend"].tolist() == [10.0, 0.3, 20.0, 0.3]
    assert summary["spend"].dtype == float
    assert summary["contribution"].tolist()[1] == 0.3  # exact: DECIMAL, not 0.30000000000000004
    types = dict(session.columns(SUMMARY))
    assert types["spend"] == MONEY_TYPE and types["contribution"] == MONEY_TYPE
    assert latest_published_mmm_run(session) == "run-b"
    latest = session.query("select spend from measurement.latest_mmm_channel_summary order by 1")
    assert latest["spend"].tolist() == [0.3, 20.0]

    # a failed publication (the second table's columns are wrong) changes nothing
    bad = _diagnostics("run-c", "2026-03-01", True).assign(extra_in_the_middle=1)
    bad = bad[["run_id", "extra_in_the_middle", "fitted_at", "published"]]
    with pytest.raises(ValueError, match=r"mmm_diagnostics: columns"):
        publish_run(session, "run-c", {SUMMARY: _summary("run-c", 30.0), DIAGNOSTICS: bad})
    assert sorted(set(read_table(session, SUMMARY)["run_id"])) == ["run-a", "run-b"]
    assert latest_published_mmm_run(session) == "run-b"

    # a newer version adds a column at the end: earlier runs get NULL there
    publish_run(session, "run-d", {SUMMARY: _summary("run-d", 40.0).assign(roas=2.0)})
    grown = read_table(session, SUMMARY, columns=["run_id", "roas"]).sort_values("run_id")
    assert list(grown.columns) == ["run_id", "roas"]
    assert grown["roas"].isna().tolist() == [True] * 4 + [False] * 2

    # catalog
    assert table_exists(session, SUMMARY) and not table_exists(session, "measurement.nothing")
    assert not table_exists(session, "nowhere.nothing")
    listed = session.tables("measurement")
    assert {"log", "mmm_channel_summary", "mmm_diagnostics"} <= set(listed)
    assert "latest_mmm_channel_summary" in listed
    assert not [t for t in listed if "staged" in t]
    assert [name for name, _type in session.columns("marts.things")] == ["a", "b"]

    # a frame registered for SQL, for one block
    with session.registered("_frame", pd.DataFrame({"x": [1, 2, 3]})) as name:
        assert session.query(f"select sum(x) as s from {name}")["s"].tolist() == [6]
    assert session.fetchall("select count(*) from measurement.log where a = ?", [2])[0][0] == 1

    # a session-scoped table (MTA's push-down keeps its touches in one), Arrow, a typed statement
    session.create_temp_table("_kept", "select a from measurement.log where a > 1")
    assert session.query("select count(*) as n from _kept")["n"].tolist() == [1]
    session.drop_temp_table("_kept")
    batches = list(session.arrow_batches("select a from measurement.log order by a"))
    assert [v for b in batches for v in b.column(0).to_pylist()] == [1, 2]
    assert session.statement("select 1 as one")["one"].tolist() == [1]


def test_an_unknown_engine_is_refused_when_opening(monkeypatch) -> None:
    monkeypatch.setenv("TRIANGULATE_WAREHOUSE", "oracle")
    with pytest.raises(ValueError, match="TRIANGULATE_WAREHOUSE"), connect():
        pass


@pytest.mark.slow
def test_release_lets_another_process_open_the_local_spark_warehouse(spark_home) -> None:
    """Derby, the local metastore, admits one JVM: while this process holds its Spark JVM a
    second process (dbt's own Spark) cannot open the catalog; after ``release()`` it can.
    The dbt resource calls ``release()`` before every dbt command."""
    import os
    import subprocess
    import sys

    from triangulate.warehouse import release, replace_table

    with connect() as s:
        replace_table(s, "marts.released", pd.DataFrame({"x": [1, 2]}))
    code = (
        "from triangulate.warehouse import connect, read_table\n"
        "with connect(read_only=True) as s: print('rows', len(read_table(s, 'marts.released')))"
    )
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}

    def other_process() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
        )

    held = other_process()
    assert held.returncode != 0 and "MetaStoreClient" in held.stderr, held.stdout
    release()
    freed = other_process()
    assert freed.returncode == 0, freed.stderr[-3000:]
    assert "rows 2" in freed.stdout


def test_dates_timestamps_and_nulls_read_back_alike_on_every_engine(session) -> None:
    """A DATE, a naive and a tz-aware TIMESTAMP, each with a NULL, read back with DuckDB's
    ``.df()`` dtypes; a NULL from a cursor is ``None`` (not NaT) and binds back as a
    parameter (a raw gate's ``max(checked_at)`` over no rows, ``files_to_validate``)."""
    frame = pd.DataFrame(
        {
            "n": [1, 2],
            "day": [date(2026, 1, 2), None],
            "seen": pd.to_datetime(["2026-01-02 03:04:05", None]),
            "stamped": pd.to_datetime(["2026-01-02 03:04:05+00:00", None], utc=True),
        }
    )
    replace_table(session, "marts.stamps", frame)
    back = read_table(session, "marts.stamps").sort_values("n").reset_index(drop=True)
    assert str(back["day"].dtype) == "datetime64[us]"
    assert str(back["seen"].dtype) == "datetime64[us]"
    assert back["day"].tolist()[0] == pd.Timestamp("2026-01-02") and back["day"].isna()[1]
    assert back["seen"].tolist()[0] == pd.Timestamp("2026-01-02 03:04:05")
    # Spark's TIMESTAMP holds DuckDB's timestamp and timestamptz alike: naive UTC there
    stamped = back["stamped"]
    assert str(stamped.dtype).startswith("datetime64[us")
    utc = (
        stamped.dt.tz_convert("UTC") if stamped.dt.tz is not None else stamped.dt.tz_localize("UTC")
    )
    assert utc[0] == pd.Timestamp("2026-01-02 03:04:05", tz="UTC") and utc.isna()[1]

    none = session.execute("select max(seen) from marts.stamps where n > 5").fetchall()
    assert none == [(None,)]
    after = session.execute("select count(*) from marts.stamps where seen > ?", [none[0][0]])
    assert after.fetchall() == [(0,)]
    assert session.execute(
        "select count(*) from marts.stamps where seen > ?", [pd.NaT]
    ).fetchall() == [(0,)]
