"""End to end on the small simulated world: every asset materializes, the published
tables follow the contract, the measurement story emerges, bad input that fails a gate
stops the pipeline before the models without touching what is published or what landed,
and a bad file or record is isolated without stopping anything (issue #19)."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from triangulate.contracts import GEO_MODEL_TABLES, REFRESH_TABLES, TABLE_COLUMNS
from triangulate.simulator import config as cfg

pytestmark = pytest.mark.slow

FAST_MMM = Path(__file__).parent / "fixtures" / "mmm_fast.yaml"

FIRST_RUN_ABSENT = (*GEO_MODEL_TABLES, *REFRESH_TABLES)
PUBLISHED = [t for t in TABLE_COLUMNS if t.startswith("measurement.") and t not in FIRST_RUN_ABSENT]
"""The tables a first run with the default (national) MMM publishes: every measurement
table of the contract but the geo model's and the week-over-week change (no previous run)."""


def _run(select: str = "*") -> tuple[bool, str]:
    from dagster_project.runner import materialize_selection

    lines: list[str] = []
    ok = materialize_selection(select, echo=lines.append)
    return ok, "\n".join(lines)


def _query(home: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(sql).df()


def _published(home: Path, tables: list[str]) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return {t: conn.execute(f"select * from {t} order by all").df() for t in tables}


def _changed(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]) -> list[str]:
    """Tables whose rows changed. A model that reruns on unchanged inputs (MTA when only
    spend failed its gate) may sum floats in another order: numbers compare to 1e-9
    relative or one micro-unit of money (money is DECIMAL(28,6): a sum that lands on a
    rounding boundary moves by exactly 1e-6, which reads back as 1.0000003e-6), everything
    else exactly."""
    changed = []
    for table, frame in before.items():
        try:
            pd.testing.assert_frame_equal(frame, after[table], rtol=1e-9, atol=1.5e-6)
        except AssertionError:
            changed.append(table)
    return changed


def _landing_digest(home: Path) -> dict[str, str]:
    root = home / "landing"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def pipeline_home(tmp_path_factory: pytest.TempPathFactory, small_world: Path):
    home = tmp_path_factory.mktemp("pipeline") / "home"
    home.mkdir()
    shutil.copytree(small_world / "landing", home / "landing")
    shutil.copytree(small_world / "truth", home / "truth")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRIANGULATE_HOME", str(home))
        mp.setenv("TRIANGULATE_MMM_CONFIG", str(FAST_MMM))
        ok, log = _run("*")
        assert ok, log
        yield home


def test_every_contract_table_is_published_with_its_columns(pipeline_home: Path) -> None:
    for table, columns in TABLE_COLUMNS.items():
        # the default MMM is national: it publishes no geo table; a first run has no
        # previous run to compare with: no ROAS change table
        if table in FIRST_RUN_ABSENT:
            assert not _query(
                pipeline_home,
                "select * from information_schema.tables where table_schema || '.' || "
                f"table_name = '{table}'",
            ).shape[0], f"{table} published by a first national MMM run"
            continue
        frame = _query(pipeline_home, f"select * from {table} limit 5")
        assert len(frame), f"{table} is empty"
        missing = [c for c in columns if c not in frame.columns]
        assert not missing, f"{table} lacks {missing}"
    geos = _query(pipeline_home, "select distinct geo from marts.fct_weekly_channel_spend")["geo"]
    assert "ALL" not in set(geos)
    assert (pipeline_home / "artifacts/reports/latest.html").exists()


def test_money_is_decimal_and_ratios_are_double_in_the_warehouse(pipeline_home: Path) -> None:
    """What a SQL client sees (issue #20): every money column of the published tables is
    DECIMAL (contracts.MONEY_COLUMNS; the marts through dbt's money macro), no other
    measurement column is, and the ratios stay DOUBLE."""
    from triangulate.contracts import MONEY_COLUMNS, MONEY_TYPE

    types = _query(
        pipeline_home,
        "select table_schema || '.' || table_name as tbl, column_name, data_type "
        "from information_schema.columns where table_schema in ('marts', 'measurement')",
    )
    kind = {(r.tbl, r.column_name): r.data_type for r in types.itertuples()}
    money = {(t, c) for t, cols in MONEY_COLUMNS.items() for c in cols if (t, c) in kind}
    assert {t for t, _ in money} >= {t for t in PUBLISHED if t in MONEY_COLUMNS}
    assert all(kind[m] == MONEY_TYPE for m in money), {m: kind[m] for m in money}
    measurement_decimal = {
        k for k, v in kind.items() if k[0].startswith("measurement.") and v.startswith("DECIMAL")
    }
    views = {k for k in measurement_decimal if k[0].startswith("measurement.latest_")}
    assert measurement_decimal - views == money
    for table, column in (
        ("marts.fct_orders", "net_revenue"),
        ("marts.fct_weekly_channel_spend", "spend"),
        ("marts.mmm_weekly_input", "net_revenue"),
    ):
        assert kind[(table, column)] == MONEY_TYPE, (table, column)
    for table, column in (
        ("measurement.mmm_channel_summary", "roas"),
        ("measurement.mmm_channel_summary", "mroas"),
        ("measurement.triangulation", "mmm_roas"),
        ("measurement.geo_experiment_results", "iroas"),
        ("measurement.geo_experiment_results", "p_value"),
        ("measurement.budget_plan_summary", "value_pct_of_revenue"),
        ("measurement.mta_channel_credit", "conversions"),
    ):
        assert kind[(table, column)] == "DOUBLE", (table, column, kind[(table, column)])


def test_last_touch_over_credits_brand_search_and_under_credits_meta(pipeline_home: Path) -> None:
    """The classic last-click trap, emerging from the mechanics: brand search harvests the
    halo of tv/podcast and the exposure of meta; the truth says otherwise."""
    credit = _query(
        pipeline_home,
        "select channel, sum(revenue) as revenue from measurement.mta_channel_credit "
        "where model = 'last_touch' group by channel",
    ).set_index("channel")["revenue"]
    truth = (
        pd.read_csv(pipeline_home / "truth/weekly_incremental_revenue.csv")
        .groupby("component")["revenue"]
        .sum()
    )
    mta_share = credit / credit.sum()
    true_share = truth / truth.sum()
    assert mta_share["google_search_brand"] > 2 * true_share["google_search_brand"], (
        mta_share,
        true_share,
    )
    assert mta_share.get("meta", 0.0) < true_share["meta"], (mta_share, true_share)
    assert (
        mta_share.get("tv", 0.0) == 0.0 < true_share["tv"]
    )  # offline: invisible to click tracking


def test_triangulation_shows_the_plans_decisions_and_no_mta_for_offline(
    pipeline_home: Path,
) -> None:
    table = _query(pipeline_home, "select * from measurement.triangulation").set_index("channel")
    assert set(cfg.CHANNEL_NAMES) <= set(table.index)
    assert set(table["decision"]) <= {"scale", "test", "hold", "shift_budget_away"}
    for channel in ("tv", "podcast"):  # click tracking cannot see them: no MTA figure, not 0
        assert table.loc[channel, "flag"] == "mta_not_measurable", table[
            ["mta_roas", "mmm_roas", "flag"]
        ]
        assert np.isnan(table.loc[channel, "mta_roas"])
    assert table["reason"].str.len().min() > 20
    run = table["run_id"].iloc[0]
    plan = _query(
        pipeline_home, f"select * from measurement.budget_plan where run_id = '{run}'"
    ).set_index("channel")
    assert (plan["decision"] == table.loc[plan.index, "decision"]).all()
    summary = _query(
        pipeline_home, f"select * from measurement.budget_plan_summary where run_id = '{run}'"
    )
    assert set(summary["plan"]) == {"total", "reallocate"} and summary["recommended"].sum() == 1


def test_mmm_runs_are_published_with_diagnostics_and_a_saved_model(pipeline_home: Path) -> None:
    diag = _query(pipeline_home, "select * from measurement.mmm_diagnostics order by fitted_at")
    assert diag["published"].any()
    for run_id in diag.loc[diag["published"], "run_id"]:
        assert (pipeline_home / "artifacts/mmm" / run_id).is_dir()
        summary = _query(
            pipeline_home,
            f"select * from measurement.mmm_channel_summary where run_id = '{run_id}'",
        )
        assert set(summary["channel"]) == set(cfg.CHANNEL_NAMES)
        assert (summary["roas_hdi_low"] <= summary["roas"]).all() and (
            summary["roas"] <= summary["roas_hdi_high"]
        ).all()
    # the experiment calibrated a second fit
    assert diag["run_id"].str.endswith("-calibrated").any()
    plan = _query(pipeline_home, "select * from measurement.budget_plan")
    # + 1e-5: both amounts are stored to the micro-unit (contracts.MONEY_TYPE)
    assert (
        (plan["recommended_spend"] - plan["current_spend"]).abs()
        <= 0.3 * plan["current_spend"] + 1e-5
    ).all()


def test_incremental_rerun_of_ingest_loads_nothing(
    pipeline_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIANGULATE_HOME", str(pipeline_home))
    before = _query(pipeline_home, "select count(*) as n from raw._loaded_files")["n"][0]
    rows = _query(pipeline_home, "select count(*) as n from raw.segment_events")["n"][0]
    ok, log = _run("group:ingest")
    assert ok, log
    assert _query(pipeline_home, "select count(*) as n from raw._loaded_files")["n"][0] == before
    assert _query(pipeline_home, "select count(*) as n from raw.segment_events")["n"][0] == rows


def _bad_meta_export(landing: Path) -> Path:
    src = sorted((landing / "ads/meta").glob("*.json"))[0]
    doc = json.loads(src.read_text())
    for row in doc["data"]:
        row["amount_spent"] = row.pop("spend")
    target = landing / "ads/meta/meta_insights_renamed.json"
    target.write_text(json.dumps(doc))
    return target


def _truncated_events(landing: Path) -> Path:
    src = sorted((landing / "events").glob("*.ndjson"))[0]
    lines = src.read_text().splitlines(keepends=True)
    target = landing / "events/events-late.ndjson"
    target.write_text("".join(lines[:4]) + lines[4][:40])
    return target


def _empty_file(landing: Path) -> Path:
    target = landing / "offline/empty.csv"
    target.write_text("")
    return target


def _negative_spend(landing: Path) -> Path:
    target = landing / "offline/tv_correction.csv"
    target.write_text(
        "date,channel,campaign,geo,spend,currency\n2025-12-22,tv,tv_spot_primetime,501,-120.00,USD\n"
    )
    return target


def _unknown_currency(landing: Path) -> Path:
    target = landing / "offline/podcast_intl.csv"
    target.write_text(
        "date,channel,campaign,geo,spend,currency\n2025-12-22,podcast,podcast_host_read,,80.00,XYZ\n"
    )
    return target


def _future_date(landing: Path) -> Path:
    target = landing / "offline/tv_plan.csv"
    target.write_text(
        "date,channel,campaign,geo,spend,currency\n2031-01-06,tv,tv_spot_primetime,501,100.00,USD\n"
    )
    return target


def _missing_week(landing: Path) -> Path:
    """The next drop: controls for the two weeks after the world's last week, and the TV
    agency's file for the second of them. The first week's TV file never came, so metro 501
    has a hole in its weekly spend."""
    last_week = cfg.START_DATE + timedelta(weeks=cfg.N_WEEKS - 1)
    days = [last_week + timedelta(days=7 + i) for i in range(14)]
    controls = {
        "price_index": "0.9200",
        "promotion": "0",
        "holiday": "0",
        "competitor_activity": "1.0",
    }
    (landing / "controls/controls_next.csv").write_text(
        "date,geo,name,value\n"
        + "".join(f"{d},,{name},{value}\n" for d in days for name, value in controls.items())
    )
    target = landing / "offline/tv_late.csv"
    target.write_text(
        f"date,channel,campaign,geo,spend,currency\n{days[7]},tv,tv_spot_primetime,501,100.00,USD\n"
    )
    return target


REPLAYED = "_replayed"


def _replay_id(value):
    """Stripe object ids (evt_, pi_, cs_, ch_, re_) -> new ids; the shop's order id stays."""
    if isinstance(value, dict):
        return {k: _replay_id(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_replay_id(v) for v in value]
    if isinstance(value, str) and value.split("_")[0] in ("evt", "pi", "cs", "ch", "re"):
        return value + REPLAYED
    return value


def _duplicated_order(landing: Path) -> Path:
    """A connector replays one order's Stripe events under new ids (a second checkout and
    payment for the same shop order id), signed with the documented test secret."""
    from triangulate.landing import STRIPE_TEST_WEBHOOK_SECRET, ndjson_line, webhook_record
    from triangulate.signing import stripe_signature_header

    src = sorted((landing / "webhooks/stripe").glob("*.ndjson"))[0]
    records = [json.loads(line) for line in src.read_text().splitlines()]
    first = next(
        json.loads(r["body"])
        for r in records
        if json.loads(r["body"])["type"] == "payment_intent.succeeded"
    )
    intent = first["data"]["object"]["id"]
    replayed = b""
    for record in records:
        if intent not in record["body"]:
            continue
        body = json.dumps(_replay_id(json.loads(record["body"])), separators=(",", ":"))
        signature = stripe_signature_header(STRIPE_TEST_WEBHOOK_SECRET, body.encode(), 1767225600)
        replayed += ndjson_line(webhook_record(body.encode(), {"stripe-signature": signature}))
    target = landing / "webhooks/stripe/stripe-replayed.ndjson"
    target.write_bytes(replayed)
    return target


def _order_of_replay(home: Path) -> str:
    line = (home / "landing/webhooks/stripe/stripe-replayed.ndjson").read_text().splitlines()[0]
    return json.loads(json.loads(line)["body"])["data"]["object"]["metadata"]["order_id"]


@pytest.mark.parametrize(
    ("make_bad", "expected"),
    [
        (
            _negative_spend,
            ["raw.offline_spend", "expect_column_values_to_match_regex(spend", "-120.00"],
        ),
        (
            _unknown_currency,
            ["raw.offline_spend", "expect_column_values_to_be_in_set(currency", "XYZ"],
        ),
        (_future_date, ["raw.offline_spend", "_date_days_after_today", "2031-01-06"]),
        (
            _missing_week,
            ["marts.fct_weekly_channel_spend", "_weeks_since_previous", "channel=tv", "geo=501"],
        ),
        (
            _duplicated_order,
            [
                "marts.fct_orders",
                "expect_column_values_to_be_between(payment_count",
                "payment_count=2",
            ],
        ),
    ],
    ids=[
        "negative-spend",
        "unknown-currency",
        "future-date",
        "missing-week",
        "duplicated-order",
    ],
)
def test_bad_input_stops_the_pipeline_before_the_models(
    pipeline_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_bad,
    expected: list[str],
) -> None:
    home = tmp_path / "home"
    shutil.copytree(pipeline_home, home, ignore=shutil.ignore_patterns("dagster"))
    monkeypatch.setenv("TRIANGULATE_HOME", str(home))
    published = _published(home, PUBLISHED)
    make_bad(home / "landing")
    landed = _landing_digest(home)
    ok, log = _run("*")  # the whole pipeline: it must stop at the load or the gate
    assert not ok
    for fragment in expected:
        assert fragment in log, f"{fragment!r} not in:\n{log}"
    if make_bad is _duplicated_order:
        assert f"order_id={_order_of_replay(home)}" in log, log
    assert _landing_digest(home) == landed, "landing files must stay untouched"
    changed = _changed(published, _published(home, PUBLISHED))
    assert not changed, f"published results changed: {changed}\n{log}"


def test_a_bad_file_or_record_is_isolated_and_the_pipeline_goes_on(
    pipeline_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #19: a file that cannot be loaded is quarantined and a bad record dead-lettered
    with file, line and reason; dbt, MTA and MMM still run, and the next run does not retry
    the quarantined files."""
    home = tmp_path / "home"
    shutil.copytree(pipeline_home, home, ignore=shutil.ignore_patterns("dagster"))
    monkeypatch.setenv("TRIANGULATE_HOME", str(home))
    monkeypatch.setenv("TRIANGULATE_MMM_CONFIG", str(FAST_MMM))
    for make_bad in (_bad_meta_export, _truncated_events, _empty_file):
        make_bad(home / "landing")
    landed = _landing_digest(home)
    gates = (
        "select count(*) as n from measurement.data_quality where table_name = 'marts.fct_orders'"
    )
    gated_before = _query(home, gates)["n"][0]
    ok, log = _run("*")
    assert ok, log
    assert _query(home, gates)["n"][0] > gated_before  # dbt and the mart gates ran
    quarantined = _query(home, "select file, error from raw._quarantined_files order by file")
    assert list(quarantined["file"]) == ["ads/meta/meta_insights_renamed.json", "offline/empty.csv"]
    assert "missing field 'spend'" in quarantined["error"][0]
    assert "file is empty" in quarantined["error"][1]
    dead = _query(home, "select file, line, reason from raw._dead_letter")
    assert list(zip(dead["file"], dead["line"], strict=True)) == [("events/events-late.ndjson", 5)]
    assert "line 5 is not valid JSON" in dead["reason"][0]
    late = "select count(*) as n from raw.segment_events where _file = 'events/events-late.ndjson'"
    assert _query(home, late)["n"][0] == 4
    again, log = _run("group:ingest")
    assert again, log
    assert len(_query(home, "select * from raw._quarantined_files")) == 2  # not retried
    assert _landing_digest(home) == landed, "landing files must stay untouched"
