"""The maintenance commands on Spark (``TRIANGULATE_WAREHOUSE=spark``) do what they do on
DuckDB: ``quarantine release`` / ``drop`` (:mod:`triangulate.quarantine`) and ``privacy
retain`` / ``erase`` (:mod:`triangulate.privacy`) change the same rows, say the same
sentences and count the same rows, and leave equal tables.

One landing zone (tests/test_privacy.py's: an email in every source, a dead-lettered line;
plus a file that cannot be parsed) is loaded into a DuckDB warehouse and a local Spark
warehouse; each step then runs on both and the raw tables are compared after it.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.test_privacy import ANN, BOB, EMAIL_TABLES, _hash, _landing
from triangulate import ingest, privacy, quarantine
from triangulate.warehouse import as_session, connect

pytestmark = pytest.mark.slow

BINARY = "events/binary.ndjson"
EVENTS = "events/events-1.ndjson"


@pytest.fixture(scope="module")
def engines(spark_home: Path, tmp_path_factory):
    """``{"duckdb": session, "spark": session}``, both loaded from ``spark_home/landing``."""
    landing = _landing(spark_home)
    (landing / BINARY).write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00garbage\nmore garbage\n")
    conn = duckdb.connect(str(tmp_path_factory.mktemp("maintenance_duck") / "warehouse.duckdb"))
    with connect() as spark:
        assert spark.engine == "spark"
        sessions = {"duckdb": as_session(conn), "spark": spark}
        loads = {e: _outcomes(ingest.load_all(s, landing)) for e, s in sessions.items()}
        assert loads["spark"] == loads["duckdb"]
        assert loads["duckdb"]["events"][2] and BINARY in loads["duckdb"]["events"][2][0]
        yield sessions
    conn.close()


def _outcomes(results: dict[str, ingest.LoadResult]) -> dict[str, tuple]:
    return {
        name: (r.files_loaded, r.rows_loaded, r.errors, r.rows_dead_lettered, r.still_quarantined)
        for name, r in results.items()
    }


def _frame(session, sql: str, sort: list[str]) -> pd.DataFrame:
    frame = session.query(sql).sort_values(sort).reset_index(drop=True)
    for column in frame.columns:
        if column in ("_line", "line", "rows", "size"):
            frame[column] = frame[column].astype("int64")
    if "payload" in frame:
        frame["payload"] = frame["payload"].map(json.loads)
    return frame.astype(object).where(frame.notna(), None)


def _state(session) -> dict[str, pd.DataFrame]:
    """What the commands change, comparable across engines (times left out)."""
    state = {
        table: _frame(session, f"select * from {table}", ["_file", "_line"]).drop(
            columns="_loaded_at"
        )
        for table in EMAIL_TABLES
    }
    state["dead"] = _frame(
        session,
        f"select source, file, line, field, reason, raw_text from {ingest.DEAD_LETTER}",
        ["file", "line", "reason"],
    )
    state["ledger"] = _frame(
        session, f"select source, file, sha256, rows from {ingest.LEDGER}", ["file"]
    )
    state["actions"] = _frame(
        session,
        f"select file, action from {ingest.QUARANTINE_ACTIONS} order by acted_at",
        ["file", "action"],
    )
    return state


def _same_on_both(engines, step, *args, tables: bool = True):
    """``step(session, *args)`` on DuckDB then Spark: equal results, and equal tables after
    (``tables``; the state of DuckDB's returned then, else ``None``)."""
    results = {e: step(s, *args) for e, s in engines.items()}
    assert results["spark"] == results["duckdb"], step.__name__
    if not tables:
        return results["duckdb"], None
    states = {e: _state(s) for e, s in engines.items()}
    for name, expected in states["duckdb"].items():
        pd.testing.assert_frame_equal(states["spark"][name], expected, obj=name)
    return results["duckdb"], states["duckdb"]


def _load_events(session):
    return _outcomes({"events": ingest.load_source(session, ingest.SOURCES_BY_NAME["events"])})


def _rows_of(state, table: str, file: str) -> int:
    return int((state[table]["_file"] == file).sum())


def test_quarantine_release_and_drop_as_on_duckdb(engines) -> None:
    message, _ = _same_on_both(engines, quarantine.release, f"landing/{BINARY}", tables=False)
    assert message == f"landing/{BINARY}: released: the next run loads it again"
    loaded, _ = _same_on_both(engines, _load_events, tables=False)  # retried: still garbage
    assert len(loaded["events"][2]) == 1 and BINARY in loaded["events"][2][0]

    message, state = _same_on_both(engines, quarantine.drop, EVENTS)
    assert message == (
        f"landing/{EVENTS}: dropped: it is never loaded (recorded in "
        "raw._quarantine_actions); 4 loaded row(s) removed from raw.segment_events"
    )
    assert _rows_of(state, "raw.segment_events", EVENTS) == 0
    assert EVENTS in set(state["ledger"]["file"])  # the ledger keeps it: not loaded again
    loaded, _ = _same_on_both(engines, _load_events, tables=False)
    assert loaded["events"][1] == 0

    # released: its ledger row goes, and the next load brings its rows back
    _same_on_both(engines, quarantine.release, EVENTS, tables=False)
    loaded, state = _same_on_both(engines, _load_events)
    assert loaded["events"][0] == [EVENTS] and loaded["events"][1] == 4
    assert _rows_of(state, "raw.segment_events", EVENTS) == 4
    assert list(state["actions"].itertuples(index=False, name=None)) == [
        (BINARY, "release"),
        (EVENTS, "drop"),
        (EVENTS, "release"),
    ]
    listed = {
        e: [(x.file, x.status, x.rows_dead_lettered) for x in quarantine.list_entries(s)]
        for e, s in engines.items()
    }
    dead = len(state["dead"])  # the unterminated line, once per load of the file
    assert (
        listed["spark"]
        == listed["duckdb"]
        == [
            (BINARY, "quarantined", 0),
            (EVENTS, "loaded", dead),
        ]
    )


def test_privacy_retain_and_erase_as_on_duckdb(engines) -> None:
    counts, state = _same_on_both(engines, privacy.retain, 30)
    assert counts == {
        "raw.segment_events": 1,
        "raw.stripe_events": 2,
        "raw.shopify_events": 1,
        "raw._dead_letter": 0,
    }
    ann = f"sha256:{_hash(ANN)}"
    stripe = state["raw.stripe_events"]
    charge = json.loads(stripe["body"][1])["data"]["object"]
    assert charge["billing_details"]["email"] == ann and charge["receipt_email"] == ann
    assert stripe["payload"][1]["body"] == stripe["body"][1]  # payload and column alike

    dead = len(state["dead"])  # the unterminated line with Ann's email (per load of its file)
    assert dead >= 1
    counts, state = _same_on_both(engines, privacy.erase, BOB)
    assert counts == {
        "raw.segment_events": 1,
        "raw.stripe_events": 1,
        "raw.shopify_events": 1,
        "raw._dead_letter": 0,
    }
    # everything received before now, the dead letter included, is hashed
    counts, state = _same_on_both(engines, privacy.retain, 0)
    assert counts == {
        "raw.segment_events": 1,  # m1 (recent); m2 was hashed, m3 (Bob) erased
        "raw.stripe_events": 0,
        "raw.shopify_events": 0,
        "raw._dead_letter": dead,
    }
    assert all(ann in t and "ann.lee@" not in t for t in state["dead"]["raw_text"])

    # erase matches the hashed copies too: the email is gone everywhere, the rows stay
    counts, state = _same_on_both(engines, privacy.erase, ANN)
    assert counts == {
        "raw.segment_events": 2,
        "raw.stripe_events": 2,
        "raw.shopify_events": 1,
        "raw._dead_letter": dead,
    }
    assert state["dead"].empty
    for table in EMAIL_TABLES:
        text = state[table].to_json().lower()
        assert "ann.lee@" not in text and _hash(ANN) not in text, table
        assert BOB not in text, table
    assert len(state["raw.segment_events"]) == 4  # rows kept (m1..m4)
