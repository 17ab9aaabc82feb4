"""A brand the simulator did not make, landed only as docs/landing_formats.md describes.

Three things once stopped such a brand on its way in, each on a rule no doc stated:

1. the offline-spend gate refused USD when ``fx_rates.csv`` did not list it, while dbt
   converts the FX file's quote currency at 1 (the gate now accepts exactly the currencies
   dbt converts: ``triangulate.quality.known_currencies``);
2. ``marts.mmm_weekly_input`` needed the simulator's four controls (its not_null tests
   stopped dbt when a brand landed only ``holiday``); it now has one column per control
   landed, or none, and the MMM fits those;
3. offline rows were weekly unless a ``period`` column said otherwise, so daily rows
   failed dbt's test; a row now covers its day, ``period = week`` a week from a Monday.

Each goes through the real path on a small hand-made landing zone: the Dagster ingest with
its gates (1), ``dbt build`` (2, 3).
"""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tests.dbt_fixtures import world_tools

MONDAY = date(2025, 3, 3)
GEOS = "geo,name,population_weight\n501,North,3\n602,South,1\n"
# EUR and GBP only: the file quotes in USD (usd_per_unit), so it need not list USD
FX = "date,currency,usd_per_unit\n" + "".join(
    f"{MONDAY + timedelta(days=d)},EUR,1.10\n{MONDAY + timedelta(days=d)},GBP,1.25\n"
    for d in range(-14, 42)
)


def _day(offset: int) -> str:
    return str(MONDAY + timedelta(days=offset))


def _write(landing: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = landing / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _built(home: Path, files: dict[str, str], select: str) -> Path:
    _write(home / "landing", files)
    world_tools.load_raw(home)
    world_tools.run_dbt(["build", "--select", select, "--indirect-selection", "cautious"], home)
    return home


def _query(home: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(sql).df()


def _copy(home: Path, tmp_path: Path) -> Path:
    """A copy of a built warehouse (the module's build stays as it is)."""
    copy = tmp_path / "home"
    copy.mkdir()
    shutil.copy(home / "warehouse.duckdb", copy / "warehouse.duckdb")
    return copy


# --------------------------------------------------------------------------- offline, daily
TV_DAILY = "date,channel,campaign,geo,spend,currency\n" + "".join(
    f"{_day(d)},tv,tv_spot,501,{100 + d}.00,USD\n" for d in range(14)
) + f"{_day(1)},tv,tv_spot,602,50.00,EUR\n"  # fmt: skip
"""Daily rows without a `period` column, as the docs' format has them (a Tuesday in EUR)."""
PODCAST_WEEKLY = (
    "date,channel,campaign,geo,spend,currency,period\n"
    f"{_day(0)},podcast,podcast_host_read,,700.00,USD,week\n"
    f"{_day(7)},podcast,podcast_host_read,,1400.00,USD,week\n"
)
"""Weekly rows say so, and are dated on the Monday that starts their week."""
DAILY_BRAND = {
    "reference/geos.csv": GEOS,
    "reference/fx_rates.csv": FX,
    "offline/tv_daily.csv": TV_DAILY,
    "offline/podcast_weekly.csv": PODCAST_WEEKLY,
}


@pytest.fixture(scope="module")
def daily_brand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("daily_brand") / "home"
    return _built(home, DAILY_BRAND, "+fct_daily_channel_spend")


def test_daily_offline_rows_cover_their_day(daily_brand: Path) -> None:
    """Stop 3: daily rows written as the docs describe failed
    ``expression_is_true_stg_offline__spend_period...`` (rows were weekly by default)."""
    spend = _query(
        daily_brand,
        "select cast(date as varchar) as day, geo, channel, cast(spend as double) as spend "
        "from marts.fct_daily_channel_spend order by all",
    )
    tv = spend[spend.channel == "tv"].set_index(["day", "geo"])["spend"]
    expected = {(_day(d), "501"): 100.0 + d for d in range(14)} | {(_day(1), "602"): 55.0}
    assert tv.to_dict() == pytest.approx(expected)  # each on its own day; EUR at 1.10
    podcast = spend[spend.channel == "podcast"].groupby("day")["spend"].sum()
    assert podcast.to_dict() == pytest.approx(
        {_day(d): 100.0 for d in range(7)} | {_day(d): 200.0 for d in range(7, 14)}
    )  # a weekly row is spread over the 7 days its Monday starts
    periods = _query(daily_brand, "select distinct period from staging.stg_offline__spend")
    assert set(periods["period"]) == {"day", "week"}


def test_a_weekly_row_not_dated_on_a_monday_is_named(daily_brand: Path, tmp_path: Path) -> None:
    home = _copy(daily_brand, tmp_path)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        row = {"date": _day(1), "channel": "podcast", "campaign": "podcast_midroll", "geo": "",
               "spend": "70.00", "currency": "USD", "period": "week"}  # fmt: skip
        conn.execute(
            "insert into raw.offline_spend select ?, 'podcast', 'podcast_midroll', '', '70.00', "
            "'USD', null, null, ?, 'offline/tuesday.csv', 2, now()",
            [row["date"], json.dumps(row)],
        )
    with pytest.raises(world_tools.DbtError) as failure:
        world_tools.run_dbt(["build", "--select", "stg_offline__spend"], home)
    assert "offline_weekly_rows_are_dated_on_a_monday" in str(failure.value)


# --------------------------------------------------------------------------- currency gate
def test_spend_in_the_fx_quote_currency_passes_the_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stop 1: the offline-spend gate failed on every USD row
    (``expect_column_values_to_be_in_set(currency, in {EUR, GBP})``) while dbt converts USD
    at 1. Through the Dagster ingest and its blocking gates, as a new user runs it."""
    from dagster_project.runner import materialize_selection
    from triangulate import quality

    home = tmp_path / "home"
    _write(home / "landing", DAILY_BRAND)
    monkeypatch.setenv("TRIANGULATE_HOME", str(home))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    lines: list[str] = []
    assert materialize_selection("group:ingest", echo=lines.append), "\n".join(lines)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        accepted = quality.known_currencies(conn)
        gate = conn.execute(
            "select success from measurement.data_quality where table_name = 'raw.offline_spend'"
        ).fetchall()
    assert gate == [(True,)]
    # one owner: the gate accepts exactly what dbt's FX model converts
    world_tools.run_dbt(["build", "--select", "+int_filled_fx_rates"], home)
    converted = _query(home, "select distinct currency from intermediate.int_filled_fx_rates")
    assert accepted == sorted(converted["currency"]) == ["EUR", "GBP", "USD"]
    # and still refuses what nothing converts
    frame = pd.DataFrame({"date": ["2025-03-03"], "channel": ["tv"], "campaign": ["x"],
                          "geo": [""], "spend": ["1.00"], "currency": ["XYZ"],
                          "_file": ["offline/x.csv"], "_line": [2]})  # fmt: skip
    result = quality.validate_table(
        "raw.offline_spend", frame, data_docs=False, parameters={"known_currencies": accepted}
    )
    assert not result.success and "currency=XYZ" in result.message()


# --------------------------------------------------------------------------- controls
def _holiday() -> str:
    """``holiday`` only, national, with days missing; one geo's own value on a Wednesday.

    Day by day (a day without a value holds the last one landed before it):
    week 1 (MONDAY): Mon, Tue carry 1 from a value landed before the panel; Wed 0 (501)
    / 1 (602's own value wins); Thu 0; Fri 1; Sat 0; Sun carries 0 -> 3/7 and 4/7.
    Week 2: nothing landed, carries 0. Week 3: Mon 1, Tue carries 1, Wed 0 -> 2/7.
    Week 4: carries 0.
    """
    national = {-11: 1, 2: 0, 3: 0, 4: 1, 5: 0, 14: 1, 16: 0}
    rows = "".join(f"{_day(d)},,holiday,{v}\n" for d, v in national.items())
    return f"date,geo,name,value\n{rows}{_day(2)},602,holiday,1\n"


CONTROLS_BRAND = {
    "reference/geos.csv": GEOS,
    "reference/fx_rates.csv": FX,
    "offline/podcast_weekly.csv": "date,channel,campaign,geo,spend,currency,period\n"
    + "".join(f"{_day(7 * w)},podcast,podcast_host_read,,700.00,USD,week\n" for w in range(4)),
    "controls/holiday.csv": _holiday(),
}


@pytest.fixture(scope="module")
def controls_brand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("controls_brand") / "home"
    return _built(home, CONTROLS_BRAND, "+mmm_weekly_input")


def test_the_mmm_input_has_the_controls_landed_and_the_mmm_fits_those(
    controls_brand: Path,
) -> None:
    """Stop 2: landing only a ``holiday`` control failed
    ``not_null_mmm_weekly_input_control_price_index`` (and promotion, competitor_activity):
    dbt stopped and nothing downstream ran."""
    from triangulate.mmm.config import check_columns, load_config

    panel = _query(controls_brand, "select * from marts.mmm_weekly_input order by week_start, geo")
    assert [c for c in panel.columns if c.startswith("control_")] == ["control_holiday"]
    assert len(panel) == 8 and panel.notna().all().all()
    holiday = panel.pivot(index="week_start", columns="geo", values="control_holiday")
    assert holiday["501"].tolist() == pytest.approx([3 / 7, 0, 2 / 7, 0])
    assert holiday["602"].tolist() == pytest.approx([4 / 7, 0, 2 / 7, 0])
    # the MMM's controls default to the control columns the mart has
    config = load_config()
    mapping = check_columns(config, list(panel.columns), "marts.mmm_weekly_input")
    assert mapping["holiday"] == "control_holiday"
    assert not {"price_index", "promotion", "competitor_activity"} & set(mapping)


def test_a_brand_without_controls_builds_the_mmm_input(
    controls_brand: Path, tmp_path: Path
) -> None:
    from triangulate.mmm.config import load_config, resolve_controls

    home = _copy(controls_brand, tmp_path)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.execute("delete from raw.controls")
    world_tools.run_dbt(["build", "--select", "stg_controls__values", "mmm_weekly_input"], home)
    panel = _query(home, "select * from marts.mmm_weekly_input")
    assert len(panel) == 8 and not [c for c in panel.columns if c.startswith("control_")]
    assert resolve_controls(load_config(), list(panel.columns)).controls == ()


def test_a_control_name_that_cannot_be_a_column_is_named(
    controls_brand: Path, tmp_path: Path
) -> None:
    home = _copy(controls_brand, tmp_path)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.execute(
            "insert into raw.controls values (?, '', 'Price Index', '1.0', '{}', "
            "'controls/prices.csv', 2, now())",
            [_day(0)],
        )
    with pytest.raises(world_tools.DbtError) as failure:
        world_tools.run_dbt(["build", "--select", "mmm_weekly_input"], home)
    assert "landing/controls/prices.csv: control name 'price index'" in str(failure.value)
