"""The experiments asset's helpers: spend change against the control geos' trend, and the
registry it reads (dbt's ``staging.stg_experiments__registry``: the latest entry per id)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from dagster_project.assets.experiments import (
    REGISTRY_MODEL,
    experiment_spend_changes,
    registered_experiments,
)
from tests.dbt_fixtures import world_tools
from triangulate.geo.registry import ExperimentSpec

START, END = date(2026, 3, 2), date(2026, 3, 29)


def _spend_table() -> pd.DataFrame:
    """Meta spend per geo and day: T1, T2 paused in the test; the national budget doubles
    in the test window for everyone else (C1, C2 the named controls, O1 another geo,
    which triples so that using it instead of the controls would show)."""
    rows = []
    for day in pd.date_range("2026-01-01", "2026-04-05", freq="D"):
        in_test = pd.Timestamp(START) <= day <= pd.Timestamp(END)
        for geo, base, during in (
            ("T1", 100.0, 0.0),
            ("T2", 300.0, 0.0),
            ("C1", 50.0, 100.0),
            ("C2", 150.0, 300.0),
            ("O1", 80.0, 240.0),
        ):
            rows.append({"date": day.date(), "geo": geo, "channel": "meta",
                         "spend": during if in_test else base})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture()
def conn():
    con = duckdb.connect()
    con.execute("create schema marts")
    spend = _spend_table()
    con.register("spend_frame", spend)
    con.execute("create table marts.fct_daily_channel_spend as select * from spend_frame")
    yield con
    con.close()


def _spec(control_geos) -> ExperimentSpec:
    return ExperimentSpec.from_dict(
        {"id": "h", "channel": "meta", "kind": "holdout", "treatment_geos": ["T1", "T2"],
         "control_geos": control_geos, "start": START, "end": END, "metric": "net_revenue"}
    )  # fmt: skip


def test_spend_change_uses_the_named_control_geos(conn):
    changes = experiment_spend_changes(conn, [_spec(["C1", "C2"])])
    # planned = 400 per day x 28 days x 2 (the controls doubled); actual 0
    assert changes["h"] == pytest.approx(-400.0 * 28 * 2)


def test_spend_change_without_controls_uses_every_untreated_geo(conn):
    changes = experiment_spend_changes(conn, [_spec(None)])
    ratio = (100 + 300 + 240) / (50 + 150 + 80)
    assert changes["h"] == pytest.approx(-400.0 * 28 * ratio)


REGISTERED = """\
id: tv-holdout
channel: TV
kind: holdout
treatment_geos: [G01, G02]
start: 2026-03-02
end: 2026-03-29
metric: net_revenue
"""


def test_the_asset_reads_one_spec_per_id_the_latest_file_wins(tmp_path: Path) -> None:
    """An id registered again in a later file is a restatement: the asset sees one
    experiment, with the later file's fields, as dbt's staging model chose it."""
    from triangulate import ingest

    home = tmp_path / "home"
    folder = home / "landing" / "experiments"
    folder.mkdir(parents=True)
    (folder / "2026-02-01-tv.yaml").write_text(REGISTERED)
    restated = REGISTERED.replace("[G01, G02]", "G01, G03").replace("2026-03-29", "2026-04-05")
    (folder / "2026-02-15-tv-restated.yaml").write_text(
        restated + "spend_change: -5000\ndescription: longer\n"
    )
    (folder / "2026-02-20-search.yml").write_text(
        "- {id: s1, channel: meta, kind: heavy_up, treatment_geos: [G05], control_geos: [G06, G07],"
        " start: 2026-01-05, end: 2026-01-25, metric: orders}\n"
    )
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        ingest.load_source(conn, ingest.SOURCES_BY_NAME["experiments"], home / "landing")
        assert conn.execute("select count(*) from raw.experiments").fetchone()[0] == 3
    world_tools.run_dbt(["run", "--select", "stg_experiments__registry"], home)

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        specs = registered_experiments(conn)
    assert [s.id for s in specs] == ["s1", "tv-holdout"]  # by start date
    search, tv = specs
    assert search.control_geos == ("G06", "G07") and search.metric == "orders"
    assert tv == ExperimentSpec(
        id="tv-holdout", channel="tv", kind="holdout", treatment_geos=("G01", "G03"),
        control_geos=None, start=date(2026, 3, 2), end=date(2026, 4, 5), metric="net_revenue",
        spend_change=-5000.0, description="longer",
    )  # fmt: skip


def test_a_bad_entry_is_named_by_its_landing_file(tmp_path: Path) -> None:
    conn = duckdb.connect()
    conn.execute("create schema staging")
    conn.execute(
        f"create table {REGISTRY_MODEL} as select 'x' as experiment_id, 'tv' as channel, "
        "'holdout' as experiment_kind, '[\"G01\"]' as treatment_geos, '[\"G01\"]' as control_geos, "
        "date '2026-03-02' as start_date, date '2026-03-29' as end_date, 'net_revenue' as metric, "
        "null::varchar as spend_change, null::varchar as description, "
        "'experiments/bad.yaml' as source_file, 2 as source_line"
    )
    with pytest.raises(
        ValueError, match=r"landing/experiments/bad\.yaml entry 2: .*repeats treatment"
    ):
        registered_experiments(conn)


def test_the_experiments_asset_runs_after_the_dbt_registry_model() -> None:
    import dagster as dg

    from dagster_project.definitions import defs

    graph = defs.resolve_asset_graph()
    registry = dg.AssetKey(["staging", "stg_experiments__registry"])
    results = graph.get(dg.AssetKey(["measurement", "geo_experiment_results"]))
    assert registry in results.parent_keys
    assert dg.AssetKey(["raw", "experiments"]) not in results.parent_keys  # only through dbt
    assert graph.get(registry).is_materializable  # a dbt model of the transform step
    assert graph.get(registry).group_name == "transform"


def _asset_world(path: Path) -> None:
    """A warehouse with what the experiments asset reads: 20 geos x 104 weeks of net
    revenue (the project's simulator), daily TV and search spend per geo, and four registered
    experiments: ``good``, ``typo`` (treats ``g2O``, a typo of G20), ``overlap`` (treats
    G09 of ``good`` in overlapping weeks) and ``orders`` (a search holdout in G04 and G12
    measured in orders, a count)."""
    from triangulate.geo.simulation import synthetic_geo_panel

    panel = synthetic_geo_panel(n_geos=20, n_periods=104, period_days=7, seed=5)
    weekly = panel.rename(columns={"date": "week_start", "value": "net_revenue"})
    weekly = weekly.assign(gross_revenue=weekly["net_revenue"], orders=weekly["net_revenue"] / 50)
    days = pd.date_range(weekly["week_start"].min(), periods=104 * 7, freq="D")
    paused = (pd.Timestamp("2024-11-04"), pd.Timestamp("2024-12-01"))
    spend = pd.DataFrame(
        [{"date": d.date(), "geo": g, "channel": "tv", "spend": 100.0}
         for d in days for g in sorted(weekly["geo"].unique())]
        + [{"date": d.date(), "geo": g, "channel": "search",
            "spend": 0.0 if g in ("G04", "G12") and paused[0] <= d <= paused[1] else 50.0}
           for d in days for g in sorted(weekly["geo"].unique())]
    )  # fmt: skip
    registry = pd.DataFrame(
        [
            ("good", '["G02", "G09"]', "2024-11-04", "2024-12-01", "experiments/good.yaml"),
            ("typo", '["G01", "g2O"]', "2024-11-04", "2024-12-01", "experiments/typo.yaml"),
            ("overlap", '["g09"]', "2024-11-18", "2024-12-15", "experiments/overlap.yaml"),
            ("orders", '["G04", "G12"]', "2024-11-04", "2024-12-01", "experiments/orders.yaml"),
        ],
        columns=["experiment_id", "treatment_geos", "start_date", "end_date", "source_file"],
    ).assign(
        channel="tv", experiment_kind="holdout", control_geos=None, metric="net_revenue",
        spend_change=None, description=None, source_line=1,
    )  # fmt: skip
    registry.loc[registry["experiment_id"] == "orders", ["channel", "metric"]] = [
        "search",
        "orders",
    ]
    registry["start_date"] = pd.to_datetime(registry["start_date"]).dt.date
    registry["end_date"] = pd.to_datetime(registry["end_date"]).dt.date
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute("create schema staging")
        for name, frame in (
            ("marts.mmm_weekly_input", weekly),
            ("marts.fct_daily_channel_spend", spend),
            (REGISTRY_MODEL, registry),
        ):
            con.register("frame", frame)
            con.execute(f"create table {name} as select * from frame")
            con.unregister("frame")


def test_one_bad_experiment_does_not_fail_the_others_and_overlaps_are_flagged(tmp_path: Path):
    """Issue #19: an experiment on an unknown geo gets an error row naming it, its file and
    the near match; the others are analysed; overlapping experiments carry a warning."""
    import dagster as dg

    from dagster_project.assets.experiments import RESULTS_TABLE, geo_experiment_results
    from dagster_project.resources import WarehouseResource

    database = tmp_path / "warehouse.duckdb"
    _asset_world(database)
    outcome = dg.materialize(
        [geo_experiment_results], resources={"warehouse": WarehouseResource(database=str(database))}
    )
    assert outcome.success
    with duckdb.connect(str(database), read_only=True) as con:
        results = con.execute(f"select * from {RESULTS_TABLE}").df()
    by_id = results.groupby("experiment_id")
    assert set(by_id.groups) == {"good", "typo", "overlap", "orders"}
    typo = by_id.get_group("typo")
    assert typo[["method", "status"]].values.tolist() == [["none", "error"]]
    note = typo["notes"].iloc[0]
    assert "experiments/typo.yaml" in note and "g2O" in note and "did you mean G20" in note
    for overlapping in ("good", "overlap"):
        rows = by_id.get_group(overlapping)
        assert set(rows["method"]) == {"synthetic_control", "difference_in_differences"}
        assert (rows["status"] == "warning").all()
        assert rows["lift_pct"].notna().all()
    assert "overlaps experiment overlap" in by_id.get_group("good")["notes"].iloc[0]
    assert "g09" in by_id.get_group("good")["notes"].iloc[0]


def test_a_count_metric_is_not_money_in_the_warehouse(tmp_path: Path):
    """Issue #20: an experiment on ``orders`` has NULL incremental_revenue and iroas and
    filled incremental_conversions and cost_per_incremental_conversion; a money one the
    reverse; ``metric`` and ``metric_kind`` say which."""
    import dagster as dg

    from dagster_project.assets.experiments import RESULTS_TABLE, geo_experiment_results
    from dagster_project.resources import WarehouseResource

    database = tmp_path / "warehouse.duckdb"
    _asset_world(database)
    resources = {"warehouse": WarehouseResource(database=str(database))}
    assert dg.materialize([geo_experiment_results], resources=resources).success
    with duckdb.connect(str(database), read_only=True) as con:
        kinds = con.execute(
            f"""select experiment_id, metric, metric_kind, count(*) as n,
                  count(incremental_revenue) as revenue, count(iroas) as iroas,
                  count(incremental_conversions) as conversions,
                  count(cost_per_incremental_conversion) as cost,
                  bool_and(abs(cost_per_incremental_conversion * incremental_conversions
                               - spend_change) < 1e-6 * abs(spend_change)) as cost_is_spend_per_unit,
                  max(spend_change) as spend_change
                from {RESULTS_TABLE} where experiment_id in ('orders', 'good')
                group by all order by experiment_id"""
        ).fetchall()
    good, orders = kinds
    assert good[:8] == ("good", "net_revenue", "money", 2, 2, 0, 0, 0)  # tv spend did not move
    assert orders[:9] == ("orders", "orders", "count", 2, 0, 0, 2, 2, True)
    assert orders[9] < 0  # search paused in G04, G12
