"""Raw loads: incremental, idempotent, and loud about bad files without losing good ones."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import duckdb
import pytest

from triangulate import ingest


def _load(conn, landing: Path, name: str) -> ingest.LoadResult:
    return ingest.load_source(conn, ingest.SOURCES_BY_NAME[name], landing)


def _lines(folder: Path, pattern: str = "*.ndjson") -> int:
    return sum(sum(1 for _ in open(f)) for f in folder.glob(pattern))


@pytest.fixture
def conn(tmp_path: Path):
    c = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield c
    c.close()


def test_full_load_counts_every_record_and_rerun_loads_nothing(conn, small_world: Path) -> None:
    landing = small_world / "landing"
    results = ingest.load_all(conn, landing)
    for r in results.values():
        r.raise_for_errors()
    assert results["stripe"].rows_loaded == _lines(landing / "webhooks/stripe")
    assert results["events"].rows_loaded == _lines(landing / "events")
    meta_rows = sum(
        len(json.loads(f.read_text())["data"]) for f in (landing / "ads/meta").glob("*.json")
    )
    assert conn.execute("select count(*) from raw.meta_insights").fetchone()[0] == meta_rows
    google_rows = sum(
        len(b["results"])
        for f in (landing / "ads/google_ads").glob("*.json")
        for b in json.loads(f.read_text())
    )
    assert (
        conn.execute("select count(*) from raw.google_ads_campaign_stats").fetchone()[0]
        == google_rows
    )
    assert conn.execute("select count(*) from raw.experiments").fetchone()[0] == 1
    assert (
        conn.execute("select count(*) from raw.shopify_events").fetchone()[0] == 0
    )  # exists, empty

    before = {
        s.table: conn.execute(f"select count(*) from {s.table}").fetchone()[0]
        for s in ingest.SOURCES
    }
    again = ingest.load_all(conn, landing)
    assert all(r.rows_loaded == 0 and not r.errors for r in again.values())
    after = {
        s.table: conn.execute(f"select count(*) from {s.table}").fetchone()[0]
        for s in ingest.SOURCES
    }
    assert before == after


def test_lineage_columns_and_unknown_fields_are_kept(conn, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    folder = landing / "ads/meta"
    folder.mkdir(parents=True)
    rows = [
        {"date_start": "2025-01-01", "date_stop": "2025-01-01", "account_id": "1", "account_currency": "USD",
         "campaign_id": "c1", "campaign_name": "meta_x", "spend": "10.00", "impressions": "100", "clicks": "2",
         "brand_new_field": "kept"},
    ] * 3  # fmt: skip
    (folder / "a.json").write_text(json.dumps({"data": rows, "paging": {}}))
    _load(conn, landing, "meta").raise_for_errors()
    got = conn.execute(
        "select _file, _line, json_extract_string(payload, '$.brand_new_field') from raw.meta_insights order by _line"
    ).fetchall()
    assert got == [
        ("ads/meta/a.json", 1, "kept"),
        ("ads/meta/a.json", 2, "kept"),
        ("ads/meta/a.json", 3, "kept"),
    ]


def test_open_files_are_not_loaded_until_sealed(conn, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    folder = landing / "events"
    folder.mkdir(parents=True)
    msg = {
        "type": "page",
        "messageId": "m1",
        "timestamp": "2025-01-01T00:00:00Z",
        "anonymousId": "a",
    }
    (folder / "e.ndjson.open").write_text(json.dumps(msg) + "\n")
    assert _load(conn, landing, "events").rows_loaded == 0
    (folder / "e.ndjson.open").rename(folder / "e.ndjson")
    assert _load(conn, landing, "events").rows_loaded == 1


def test_gzipped_ndjson_loads_and_a_broken_one_is_named(conn, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    folder = landing / "events"
    folder.mkdir(parents=True)
    messages = [
        {
            "type": "page",
            "messageId": f"gz{i}",
            "timestamp": "2025-01-01T00:00:00Z",
            "anonymousId": "a",
        }
        for i in range(3)
    ]
    data = "".join(json.dumps(m) + "\n" for m in messages).encode()
    (folder / "events-1.ndjson.gz").write_bytes(gzip.compress(data))
    (folder / "events-2.ndjson.gz").write_bytes(gzip.compress(data)[:-12])  # cut short
    result = _load(conn, landing, "events")
    assert result.files_loaded == ["events/events-1.ndjson.gz"] and result.rows_loaded == 3
    assert len(result.errors) == 1
    assert result.errors[0].startswith("landing/events/events-2.ndjson.gz: not a valid gzip file")
    got = conn.execute("select message_id, _line from raw.segment_events order by _line").fetchall()
    assert got == [("gz0", 1), ("gz1", 2), ("gz2", 3)]
    assert _load(conn, landing, "events").files_skipped == 1


def test_changed_file_after_loading_is_an_error_and_keeps_the_stored_rows(
    conn, tmp_path: Path, small_world: Path
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(small_world / "landing/webhooks", landing / "webhooks")
    first = _load(conn, landing, "stripe")
    first.raise_for_errors()
    stored = conn.execute("select count(*), sum(hash(body)) from raw.stripe_events").fetchone()
    victim = sorted((landing / "webhooks/stripe").glob("*.ndjson"))[3]
    first_line = victim.read_text().splitlines(keepends=True)[0]
    with open(victim, "a") as fh:
        fh.write(first_line)
    again = _load(conn, landing, "stripe")
    assert again.rows_loaded == 0
    assert (
        len(again.errors) == 1
        and victim.name in again.errors[0]
        and "changed after it was loaded" in again.errors[0]
    )
    assert (
        conn.execute("select count(*), sum(hash(body)) from raw.stripe_events").fetchone() == stored
    )


def test_truncated_json_names_file_and_line_and_other_files_still_load(
    conn, tmp_path: Path, small_world: Path
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(small_world / "landing/events", landing / "events")
    files = sorted((landing / "events").glob("*.ndjson"))
    bad = files[5]
    text = bad.read_text().splitlines(keepends=True)
    bad.write_text("".join(text[:9]) + text[9][: len(text[9]) // 2])  # crash mid-record on line 10
    result = _load(conn, landing, "events")
    # issue #19: the torn line is dead-lettered with file and line; the file's 9 good lines load
    assert result.errors == [] and len(result.files_loaded) == len(files)
    dead = conn.execute("select file, line, reason from raw._dead_letter").fetchall()
    assert len(dead) == 1 and dead[0][:2] == (f"events/{bad.name}", 10)
    assert "line 10 is not valid JSON" in dead[0][2]
    assert conn.execute(
        "select count(*) from raw.segment_events where _file = ?", [f"events/{bad.name}"]
    ).fetchone() == (9,)
    assert conn.execute("select count(*) from raw._quarantined_files").fetchone() == (0,)


def test_schema_drift_names_the_file_record_and_field(conn, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    folder = landing / "ads/meta"
    folder.mkdir(parents=True)
    good = {"date_start": "2025-01-01", "date_stop": "2025-01-01", "account_id": "1", "account_currency": "USD",
            "campaign_id": "c1", "campaign_name": "meta_x", "spend": "10.00", "impressions": "100", "clicks": "2"}  # fmt: skip
    renamed = {("amount_spent" if k == "spend" else k): v for k, v in good.items()}
    (folder / "drift.json").write_text(json.dumps({"data": [good, renamed], "paging": {}}))
    result = _load(conn, landing, "meta")
    # issue #19: the drifted record is dead-lettered naming file, record and field; the good one loads
    assert result.errors == [] and result.rows_loaded == 1
    assert conn.execute("select file, line, field, reason from raw._dead_letter").fetchall() == [(
        "ads/meta/drift.json", 2, "spend",
        "missing field 'spend' (schema drift? meta records need: "
        "date_start, date_stop, account_currency, campaign_id, campaign_name, spend, impressions, clicks)",
    )]  # fmt: skip


def test_csv_missing_column_and_empty_file_are_named(conn, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    (landing / "offline").mkdir(parents=True)
    (landing / "offline/renamed.csv").write_text(
        "date,channel,campaign,geo,cost,currency\n2025-01-06,tv,x,501,10,USD\n"
    )
    (landing / "offline/empty.csv").write_text("")
    (landing / "offline/good.csv").write_text(
        "date,channel,campaign,geo,spend,currency,extra\n2025-01-06,tv,x,501,10,USD,y\n"
    )
    result = _load(conn, landing, "offline")
    assert result.files_loaded == ["offline/good.csv"]
    assert any("offline/renamed.csv: missing column(s) spend" in e for e in result.errors)
    assert any("offline/empty.csv: file is empty" in e for e in result.errors)
    row = conn.execute(
        "select spend, impressions, json_extract_string(payload, '$.extra') from raw.offline_spend"
    ).fetchone()
    assert row == ("10", None, "y")


def test_reference_files_are_replaced_when_a_person_edits_them(conn, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    (landing / "reference").mkdir(parents=True)
    f = landing / "reference/postal_codes.csv"
    f.write_text("postal_code,geo\n10001,501\n")
    _load(conn, landing, "reference_postal_codes").raise_for_errors()
    f.write_text("postal_code,geo\n10001,501\n90001,803\n")
    _load(conn, landing, "reference_postal_codes").raise_for_errors()
    assert conn.execute("select postal_code, geo from raw.reference_postal_codes order by 1").fetchall() == [
        ("10001", "501"), ("90001", "803"),
    ]  # fmt: skip
