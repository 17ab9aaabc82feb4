"""What the Dagster UI shows for the triangulation and report assets: the plot has bars,
the decision tables lead with what a person acts on and print numbers as numbers, and
the report asset links to the file.

The assets are materialized in process against a DuckDB warehouse holding the report's
example tables; the triangulation plot is then drawn by a real headless Chromium (the
UI shows it as an embedded image) and its bars are counted on the rendered pixels.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project.assets.reporting import measurement_report
from dagster_project.assets.triangulation import channel_triangulation
from dagster_project.resources import WarehouseResource
from tests.browser import headless_chromium
from tests.report_example import EXAMPLE_CHANNELS, example_tables
from triangulate.report.plots import SOURCE_COLORS
from triangulate.warehouse import replace_tables

WAREHOUSE_TABLES = (
    "marts.reporting_currency",
    "marts.fct_weekly_channel_spend",
    "marts.fct_weekly_revenue",
    "measurement.mta_channel_credit",
    "measurement.mmm_channel_summary",
    "measurement.mmm_weekly_contributions",
    "measurement.mmm_response_curves",
    "measurement.mmm_diagnostics",
    "measurement.budget_plan",
    "measurement.budget_plan_summary",
)

BARS_OF_COLOUR_JS = """
async ([src, rgb]) => {
  const img = new Image();
  img.src = src;
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const close = (i) => Math.abs(data[i] - rgb[0]) + Math.abs(data[i + 1] - rgb[1])
                       + Math.abs(data[i + 2] - rgb[2]) < 12;
  // a bar: a run of columns each holding at least 20 pixels of the colour (legend swatches
  // are shorter than that)
  let runs = 0, inside = false;
  for (let x = 0; x < canvas.width; x++) {
    let count = 0;
    for (let y = 0; y < canvas.height; y++) if (close((y * canvas.width + x) * 4)) count++;
    const bar = count >= 20;
    if (bar && !inside) runs++;
    inside = bar;
  }
  return {width: img.naturalWidth, height: img.naturalHeight, runs};
}
"""


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> WarehouseResource:
    monkeypatch.setenv("TRIANGULATE_HOME", str(tmp_path / "home"))
    path = tmp_path / "warehouse.duckdb"
    tables = example_tables()
    with duckdb.connect(str(path)) as conn:
        replace_tables(conn, {name: tables[name] for name in WAREHOUSE_TABLES})
    return WarehouseResource(database=str(path))


def materialized_metadata(asset, warehouse: WarehouseResource) -> dict:
    result = dg.materialize([asset], resources={"warehouse": warehouse})
    assert result.success
    (materialization,) = result.asset_materializations_for_node(asset.op.name)
    return materialization.metadata


def markdown_image(value: dg.MetadataValue) -> str:
    match = re.search(r"\((data:image/png;base64,[A-Za-z0-9+/=]+)\)", value.value)
    assert match, f"no embedded PNG in {value.value[:120]!r}"
    return match.group(1)


def test_triangulation_plot_in_the_ui_has_a_bar_per_channel_and_source(warehouse) -> None:
    metadata = materialized_metadata(channel_triangulation, warehouse)
    src = markdown_image(metadata["mta_vs_mmm_vs_experiment"])
    assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    with duckdb.connect(warehouse.database, read_only=True) as conn:
        table = conn.execute("select * from measurement.triangulation").df()
    with headless_chromium() as browser:
        page = browser.new_page()
        page.set_content("<html><body></body></html>")
        for source, column in (("MMM ROAS", "mmm_roas"), ("MMM mROAS", "mmm_mroas")):
            rgb = [int(SOURCE_COLORS[source][i : i + 2], 16) for i in (1, 3, 5)]
            seen = page.evaluate(BARS_OF_COLOUR_JS, [src, rgb])
            assert seen["width"] > 400 and seen["height"] > 200
            expected = int(table[column].notna().sum())
            assert expected == len(EXAMPLE_CHANNELS)
            assert seen["runs"] == expected, f"{source}: {seen['runs']} bars, not {expected}"
        page.close()


def test_decision_table_in_the_ui_leads_with_the_decision_and_prints_numbers(warehouse) -> None:
    metadata = materialized_metadata(channel_triangulation, warehouse)
    text = metadata["decisions"].value
    header, _, *rows = text.splitlines()
    assert header.startswith("| channel | decision | confidence |")
    assert len(rows) == len(EXAMPLE_CHANNELS)
    assert not re.search(r"\d[eE][+-]\d|\bnan\b|\bNaN\b|\bNone\b", text), text
    assert "%" in rows[0].split("|")[3]  # confidence as a percentage


def test_report_asset_links_to_the_report(warehouse) -> None:
    metadata = materialized_metadata(measurement_report, warehouse)
    link = metadata["open_report"]
    assert isinstance(link, dg.UrlMetadataValue)
    assert link.url.startswith("file://")
    path = Path(link.url.removeprefix("file://"))
    assert path.is_file() and path.name.startswith("report_") and path.suffix == ".html"
    assert Path(metadata["latest"].value).read_bytes() == path.read_bytes()
    assert metadata["bytes"].value == path.stat().st_size


def test_experiment_windows_are_dates_and_no_column_is_a_reserved_word(tmp_path: Path) -> None:
    """``measurement.geo_experiment_results`` as SQL sees it: the test window is two DATE
    columns, ``start_date`` and ``end_date``, and no column needs quoting (``end`` did)."""
    from datetime import date

    from triangulate.geo.analysis import analyze_experiment, empty_results
    from triangulate.geo.simulation import inject_lift, synthetic_geo_panel
    from triangulate.warehouse import replace_table

    start, end = date(2025, 11, 3), date(2025, 11, 30)
    treated = ["G03", "G08", "G15"]
    panel, _ = inject_lift(
        synthetic_geo_panel(n_geos=16, n_periods=420, start=date(2024, 10, 7), seed=5),
        treated,
        start,
        end,
        -8.0,
    )
    spec = {
        "id": "tv-holdout", "channel": "tv", "kind": "holdout", "treatment_geos": treated,
        "control_geos": None, "start": start, "end": end, "metric": "net_revenue",
    }  # fmt: skip
    results = analyze_experiment(spec, panel, spend_change=-20_000.0, n_placebos=0)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as conn:
        conn.execute("create schema measurement")
        reserved = {
            k for (k,) in conn.execute(
                "select keyword_name from duckdb_keywords() where keyword_category = 'reserved'"
            ).fetchall()
        }  # fmt: skip
        replace_table(conn, "measurement.geo_experiment_results", results)
        types = dict(
            row[:2]
            for row in conn.execute("describe measurement.geo_experiment_results").fetchall()
        )
        assert types["start_date"] == "DATE" and types["end_date"] == "DATE", types
        assert not set(types) & reserved, set(types) & reserved
        assert not set(empty_results().columns) & reserved
        window = conn.execute(
            "select distinct start_date, end_date from measurement.geo_experiment_results"
        ).fetchall()
    assert window == [(start, end)]


MEASUREMENT_SOURCES_YML = Path(__file__).resolve().parent.parent / (
    "dbt_project/models/measurement/_measurement__sources.yml"
)


def test_measurement_tables_are_dbt_sources_with_the_contract_columns() -> None:
    """dbt docs show the measurement tables with their column docs; the names and their
    order are triangulate.contracts' (the one owner), checked here, not copied by hand."""
    import yaml

    from triangulate.contracts import (
        BUDGET_PLAN_DETAIL_COLUMNS,
        DATA_QUALITY_COLUMNS,
        DATA_QUALITY_TABLE,
        MEASUREMENT_COLUMNS,
    )

    doc = yaml.safe_load(MEASUREMENT_SOURCES_YML.read_text(encoding="utf-8"))
    (source,) = doc["sources"]
    assert source["name"] == source["schema"] == "measurement"
    expected = {**MEASUREMENT_COLUMNS, DATA_QUALITY_TABLE: DATA_QUALITY_COLUMNS}
    expected["measurement.budget_plan"] += BUDGET_PLAN_DETAIL_COLUMNS
    declared = {f"measurement.{t['name']}": t for t in source["tables"]}
    assert set(declared) == set(expected)
    for name, table in declared.items():
        assert table.get("description", "").strip(), name
        columns = [c["name"] for c in table["columns"]]
        assert tuple(columns) == expected[name], name
        undocumented = [c["name"] for c in table["columns"] if not c.get("description")]
        assert not undocumented, f"{name}: {undocumented}"


def test_the_report_is_a_dbt_exposure_of_exactly_what_it_reads() -> None:
    import yaml

    from triangulate.report.tables import REPORT_TABLES

    doc = yaml.safe_load(MEASUREMENT_SOURCES_YML.read_text(encoding="utf-8"))
    (exposure,) = doc["exposures"]
    assert exposure["name"] == "measurement_report"
    expected = {
        f"ref('{table}')" if schema == "marts" else f"source('{schema}', '{table}')"
        for schema, table in (name.split(".") for name in REPORT_TABLES)
    }
    assert set(exposure["depends_on"]) == expected
