"""The self-contained HTML report: sections, embedded plots, numbers, missing inputs.

The report is parsed with ``html.parser``; no browser is needed here (the browser test
that screenshots the report lives with the Dagster end-to-end tests).
"""

from __future__ import annotations

import base64
import re
import struct
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from tests.report_example import EXAMPLE_CHANNELS, SHOWN_RUN, example_tables
from triangulate.report import (
    build_report,
    build_report_from_warehouse,
    latest_published_run,
    load_report_tables,
    report_file_name,
)
from triangulate.report.format import fmt_compact, fmt_fraction_pct, fmt_money, fmt_ratio
from triangulate.report.plots import channel_colors
from triangulate.report.sections import plan_horizon_weeks, weekly_plan_spend
from triangulate.warehouse import replace_tables

EXPECTED_SECTIONS = (
    "answer",
    "summary",
    "spend-revenue",
    "contributions",
    "roas",
    "response-curves",
    "triangulation",
    "budget-plan",
    "experiments",
    "data-quality",
    "diagnostics",
)
SECTIONS_WITH_PLOTS = (
    "spend-revenue",
    "contributions",
    "roas",
    "response-curves",
    "triangulation",
    "budget-plan",
)
WORD_BREAK = "\x00"
"""Where the page has a ``<wbr>``: the text around it is one word."""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GENERATED_AT = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


class ReportPage(HTMLParser):
    """Sections by id with their text and images, plus every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.section_text: dict[str, list[str]] = {}
        self.section_images: dict[str, list[str]] = {}
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        attributes = dict(attrs)
        if tag == "section" and attributes.get("id"):
            self._current = attributes["id"]
            self.section_text.setdefault(self._current, [])
            self.section_images.setdefault(self._current, [])
        for name in ("src", "href", "srcset", "action", "poster"):
            if attributes.get(name):
                self.urls.append(attributes[name] or "")
        if tag == "wbr" and self._current is not None:
            self.section_text[self._current].append(WORD_BREAK)  # a break, not a space
        if tag == "img" and self._current is not None:
            self.section_images[self._current].append(attributes.get("src") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self.section_text[self._current].append(data)

    def text(self, section: str) -> str:
        joined = " ".join(self.section_text[section]).replace(f" {WORD_BREAK} ", "")
        return " ".join(joined.split())


def parse(path: Path) -> ReportPage:
    page = ReportPage()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def decode_png(src: str) -> tuple[bytes, int, int]:
    """The PNG bytes of a data URI and the image's width and height from its IHDR chunk."""
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), src[:60]
    png = base64.b64decode(src[len(prefix) :], validate=True)
    assert png[:8] == PNG_SIGNATURE
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return png, width, height


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    return example_tables()


@pytest.fixture(scope="module")
def full_report(tables, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reports")
    return build_report(tables, out, run_id="run-42", generated_at=GENERATED_AT)


def test_every_section_is_present_and_every_plot_is_an_embedded_png(full_report: Path) -> None:
    page = parse(full_report)
    assert list(page.section_text) == list(EXPECTED_SECTIONS)
    for section in SECTIONS_WITH_PLOTS:
        assert page.section_images[section], f"section {section} has no plot"
        for src in page.section_images[section]:
            png, width, height = decode_png(src)
            assert len(png) > 10_000, f"{section}: PNG of {len(png)} bytes is suspiciously small"
            assert width >= 600 and height >= 150, (section, width, height)
    assert "not available yet" not in full_report.read_text(encoding="utf-8")


def test_report_is_self_contained(full_report: Path) -> None:
    html = full_report.read_text(encoding="utf-8")
    page = parse(full_report)
    assert "http://" not in html and "https://" not in html
    assert "//" not in "".join(u for u in page.urls if not u.startswith("data:"))
    assert all(u.startswith(("data:image/png;base64,", "#")) for u in page.urls), page.urls
    assert not page.tags & {"script", "link", "iframe", "object", "embed"}
    assert "<style>" in html


def test_numbers_and_decisions_from_the_tables_appear(full_report: Path, tables) -> None:
    page = parse(full_report)
    triangulation = tables["measurement.triangulation"]
    text = page.text("triangulation")
    for decision, reason in zip(triangulation["decision"], triangulation["reason"], strict=True):
        assert decision in text and reason in text

    spend = tables["marts.fct_weekly_channel_spend"].groupby("channel")["spend"].sum()
    for channel in EXAMPLE_CHANNELS:
        assert f"{spend[channel]:,.0f}" in page.text("spend-revenue"), channel

    plan = tables["measurement.budget_plan"]
    shown_plan = plan[plan["run_id"] == SHOWN_RUN].set_index("channel")
    for channel in EXAMPLE_CHANNELS:
        assert f"{shown_plan.at[channel, 'recommended_spend']:,.0f}" in page.text("budget-plan")

    experiments = tables["measurement.geo_experiment_results"]
    for iroas in experiments["iroas"]:
        assert f"{iroas:.2f}" in page.text("experiments")

    net = tables["marts.fct_weekly_revenue"]["net_revenue"].sum()
    total_spend = spend.sum()
    summary = page.text("summary")
    assert f"{net / total_spend:.2f}" in summary  # blended ROAS
    assert SHOWN_RUN in summary
    assert "run-42" in full_report.read_text(encoding="utf-8")


def test_the_report_opens_with_the_answer(full_report: Path, tables) -> None:
    """Issue #22: one table first (channel, decision, spend now -> planned, confidence, why)
    with the plan's dates, the decisions the same as the triangulation table's."""
    page = parse(full_report)
    assert next(iter(page.section_text)) == "answer"
    text = page.text("answer")
    assert "Plan period 2026-06-29 to 2026-09-27" in text and "data end 2026-06-28" in text
    plan = tables["measurement.budget_plan"]
    shown = plan[plan["run_id"] == SHOWN_RUN].set_index("channel")
    words = {
        "scale": "spend more",
        "shift_budget_away": "spend less",
        "hold": "hold",
        "test": "hold and test",
    }
    for channel in EXAMPLE_CHANNELS:
        row = shown.loc[channel]
        assert f"{row['current_spend']:,.0f} -> {row['recommended_spend']:,.0f}" in text
        assert row["reason"] in text
        assert words[row["decision"]] in text
    assert "P(plan beats current) 93.0 %" in text
    triangulation = tables["measurement.triangulation"].set_index("channel")
    assert (triangulation.loc[shown.index, "decision"] == shown["decision"]).all()
    assert "Stale data" not in text


def test_a_stale_plan_is_flagged_first(tables, tmp_path: Path) -> None:
    stale = dict(tables)
    stale["measurement.budget_plan"] = tables["measurement.budget_plan"].assign(
        staleness_warning="the data end on 2025-01-05, 50 weeks before this plan was computed"
    )
    page = parse(build_report(stale, tmp_path, run_id="stale"))
    assert "Stale data: the data end on 2025-01-05, 50 weeks" in page.text("answer")


def test_the_latest_published_mmm_run_is_shown(full_report: Path, tables) -> None:
    page = parse(full_report)
    summary = tables["measurement.mmm_channel_summary"].set_index(["run_id", "channel"])
    roas_text = page.text("roas")
    assert f"MMM run {SHOWN_RUN}" in roas_text
    for channel in EXAMPLE_CHANNELS:
        shown = f"{summary.at[(SHOWN_RUN, channel), 'contribution']:,.0f}"
        assert shown in roas_text
        for other in ("mmm-a", "mmm-c"):  # older published; newer but failed its gates
            assert f"{summary.at[(other, channel), 'contribution']:,.0f}" not in roas_text
    assert f"{SHOWN_RUN} (shown)" in page.text("diagnostics")
    assert "mmm-c (shown)" not in page.text("diagnostics")


def test_latest_published_run_goes_by_fit_time_not_by_name() -> None:
    diagnostics = pd.DataFrame(
        {
            "run_id": ["zeta", "alpha", "omega"],
            "fitted_at": pd.to_datetime(["2026-01-01", "2026-02-01", "2026-03-01"]),
            "published": [True, True, False],
        }
    )
    assert latest_published_run(diagnostics).run_id == "alpha"
    none = latest_published_run(diagnostics.assign(published=False))
    assert none.run_id is None and "no published MMM run yet" in none.why_none
    assert "omega" in none.why_none


def test_missing_tables_say_which_asset_to_materialize(tmp_path: Path) -> None:
    path = build_report({}, tmp_path, run_id="empty")
    page = parse(path)
    assert list(page.section_text) == list(EXPECTED_SECTIONS)
    assert not any(page.section_images.values())
    assert "not available yet: materialize marts/fct_weekly_channel_spend" in page.text(
        "spend-revenue"
    )
    assert "not available yet: materialize measurement/mmm_diagnostics" in page.text("roas")
    assert "not available yet: materialize measurement/triangulation" in page.text("triangulation")
    assert "not available yet: materialize measurement/geo_experiment_results" in page.text(
        "experiments"
    )
    assert "not available yet: materialize measurement/data_quality" in page.text("data-quality")


def test_partial_warehouse_shows_what_it_has(tables, tmp_path: Path) -> None:
    partial = {
        name: tables[name]
        for name in (
            "marts.fct_weekly_channel_spend",
            "marts.fct_weekly_revenue",
            "measurement.mmm_diagnostics",
            "measurement.mmm_channel_summary",
        )
    }
    page = parse(build_report(partial, tmp_path, run_id="partial"))
    assert page.section_images["spend-revenue"] and page.section_images["roas"]
    assert not page.section_images["response-curves"]
    assert "not available yet: materialize measurement/mmm_response_curves" in page.text(
        "response-curves"
    )
    assert "not available yet: materialize measurement/budget_plan" in page.text("budget-plan")


def test_no_published_run_means_no_mmm_numbers(tables, tmp_path: Path) -> None:
    unpublished = dict(tables)
    unpublished["measurement.mmm_diagnostics"] = tables["measurement.mmm_diagnostics"].assign(
        published=False
    )
    page = parse(build_report(unpublished, tmp_path, run_id="x"))
    for section in ("contributions", "roas", "response-curves", "budget-plan"):
        assert "no published MMM run yet" in page.text(section), section
        assert not page.section_images[section], section


def test_budget_plan_marks_on_the_curves_are_weekly_spend() -> None:
    plan = pd.DataFrame(
        {
            "channel": ["a", "b"],
            "current_spend": [1_300.0, 2_600.0],
            "recommended_spend": [2_600.0, 1_300.0],
            "horizon_weeks": [13, 13],
        }
    )
    assert plan_horizon_weeks(plan, default=4) == (13, True)
    assert plan_horizon_weeks(plan.drop(columns="horizon_weeks"), default=4) == (4, False)
    weekly = weekly_plan_spend(plan, 13)
    assert weekly.loc["a"].tolist() == [100.0, 200.0]
    assert weekly.loc["b"].tolist() == [200.0, 100.0]
    with pytest.raises(ValueError, match="horizon_weeks"):
        plan_horizon_weeks(plan.assign(horizon_weeks=[13, 26]), default=4)


def test_response_curve_section_states_its_units(full_report: Path) -> None:
    text = parse(full_report).text("response-curves")
    assert "USD/week" in text and "divided by 13" in text


def test_bad_input_names_the_table_and_column(tables, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"measurement\.triangulaton"):
        build_report(
            {"measurement.triangulaton": tables["measurement.triangulation"]}, tmp_path, run_id="r"
        )
    broken = tables["measurement.triangulation"].drop(columns="decision")
    with pytest.raises(ValueError, match=r"measurement\.triangulation lacks column\(s\) decision"):
        build_report({"measurement.triangulation": broken}, tmp_path, run_id="r")


def test_text_from_the_warehouse_is_escaped(tables, tmp_path: Path) -> None:
    hostile = tables["measurement.triangulation"].copy()
    hostile.loc[0, "reason"] = "<script>alert(1)</script> & more"
    path = build_report({"measurement.triangulation": hostile}, tmp_path, run_id="r")
    html = path.read_text(encoding="utf-8")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html


def test_latest_html_is_the_newest_report(tables, tmp_path: Path) -> None:
    first = build_report({}, tmp_path, run_id="first")
    second = build_report(
        {"measurement.triangulation": tables["measurement.triangulation"]},
        tmp_path,
        run_id="second",
    )
    assert first.name == "report_first.html" and second.name == "report_second.html"
    assert first.exists()
    assert (tmp_path / "latest.html").read_bytes() == second.read_bytes()
    assert first.read_bytes() != second.read_bytes()
    assert not list(tmp_path.glob(".*tmp"))
    assert report_file_name("2026-11-23 run/7") == "report_2026-11-23_run_7.html"


def test_load_report_tables_from_duckdb(tables, tmp_path: Path) -> None:
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        present = (
            "marts.fct_weekly_channel_spend",
            "measurement.triangulation",
            "marts.reporting_currency",  # recorded by dbt with the marts; the report needs it
        )
        replace_tables(conn, {name: tables[name] for name in present})
        loaded = load_report_tables(conn)
        assert len(loaded["marts.fct_weekly_channel_spend"]) == len(
            tables["marts.fct_weekly_channel_spend"]
        )
        assert loaded["measurement.budget_plan"].empty
        path = build_report_from_warehouse(conn, tmp_path / "reports", "wh-1")
    finally:
        conn.close()
    page = parse(path)
    assert page.section_images["spend-revenue"] and page.section_images["triangulation"]
    assert "not available yet: materialize marts/fct_weekly_revenue" in page.text("summary")


def test_channel_colours_are_stable_and_distinct() -> None:
    colors = channel_colors(["tv", "meta", "podcast", "meta"])
    assert colors == channel_colors(["podcast", "tv", "meta"])
    assert len(set(colors.values())) == 3
    with_organic = channel_colors(["tv", "meta", "podcast"], others=["direct", "organic", "tv"])
    assert {c: with_organic[c] for c in colors} == colors  # paid channels keep their colours
    assert len(set(with_organic.values())) == 5


def test_a_channel_has_one_colour_in_every_table(full_report: Path) -> None:
    html = full_report.read_text(encoding="utf-8")
    rules = re.findall(
        r"td\.channel-cell\.ch-([a-z0-9-]+) \{ border-left: 5px solid (#[0-9a-f]{6})", html
    )
    colors = dict(rules)
    assert len(rules) == len(colors) == len(EXAMPLE_CHANNELS)
    assert len(set(colors.values())) == len(EXAMPLE_CHANNELS)
    for channel in EXAMPLE_CHANNELS:
        assert f'class="channel-cell ch-{channel.replace("_", "-")}"' in html


@pytest.mark.parametrize(
    ("value", "formatter", "expected"),
    [
        (1_234_567.8, fmt_money, "1,234,568"),
        (-0.3, fmt_money, "0"),
        (np.nan, fmt_money, "n/a"),
        (1_234_567, fmt_compact, "1.23M"),
        (45_600, fmt_compact, "45.6K"),
        (0.1234, fmt_fraction_pct, "12.3 %"),
        (-0.0001, fmt_fraction_pct, "0.0 %"),
        (2.345, fmt_ratio, "2.35"),
        (None, fmt_ratio, "n/a"),
    ],
)
def test_number_formats(value, formatter, expected) -> None:
    assert formatter(value) == expected


def _shown(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["run_id"] == SHOWN_RUN]


def test_model_fit_shows_actual_vs_predicted_with_r_squared(tables, tmp_path: Path) -> None:
    """Issue #20: actual vs predicted weekly revenue, with R² over the weeks both cover."""
    noisy = dict(tables)
    revenue = tables["marts.fct_weekly_revenue"].copy()
    weeks = sorted(revenue["week_start"].unique())
    odd = revenue["week_start"].isin(weeks[1::2])
    revenue.loc[odd, "net_revenue"] *= 1.08  # the model misses every other week by 8 %
    noisy["marts.fct_weekly_revenue"] = revenue
    page = parse(build_report(noisy, tmp_path, run_id="fit", generated_at=GENERATED_AT))

    actual = revenue.groupby("week_start")["net_revenue"].sum()
    contributions = _shown(tables["measurement.mmm_weekly_contributions"])
    predicted = contributions.groupby("week_start")["contribution"].sum().reindex(actual.index)
    r2 = 1 - ((actual - predicted) ** 2).sum() / ((actual - actual.mean()) ** 2).sum()
    assert 0.5 < r2 < 0.99
    text = page.text("contributions")
    assert f"R² (in sample) {r2:.3f}" in text
    assert f"R² = {r2:.3f}" in text
    assert len(page.section_images["contributions"]) == 2  # the stack and the fit
    for src in page.section_images["contributions"]:
        decode_png(src)


def test_spend_share_beside_effect_share(full_report: Path, tables) -> None:
    summary = _shown(tables["measurement.mmm_channel_summary"]).set_index("channel")
    spend_share = summary["spend"] / summary["spend"].sum()
    effect_share = summary["contribution"] / summary["contribution"].sum()
    page = parse(full_report)
    text = page.text("roas")
    assert "share of spend" in text and "share of effect" in text
    for channel in EXAMPLE_CHANNELS:
        row = (
            f"{channel} {fmt_money(summary.at[channel, 'spend'])} "
            f"{fmt_fraction_pct(spend_share[channel])} "
            f"{fmt_money(summary.at[channel, 'contribution'])} "
            f"{fmt_fraction_pct(effect_share[channel])}"
        )
        assert row in text, row
    assert len(page.section_images["roas"]) == 2  # ROAS with HDI, and the shares


def test_marginal_roas_has_its_interval(full_report: Path, tables) -> None:
    plan = _shown(tables["measurement.budget_plan"]).set_index("channel")
    text = parse(full_report).text("roas")
    assert "mROAS 94 % HDI" in text
    for channel in EXAMPLE_CHANNELS:
        low, high = plan.at[channel, "mroas_hdi_low"], plan.at[channel, "mroas_hdi_high"]
        assert f"{fmt_ratio(plan.at[channel, 'mroas'])} [{fmt_ratio(low)}, {fmt_ratio(high)}]" in (
            text
        ), channel


def test_a_control_that_nets_to_zero_shows_its_weekly_swings(tables, tmp_path: Path) -> None:
    """A control that adds 11k in some weeks and takes 11k in others sums to 0: the table
    shows its weekly range beside the total, as the chart shows its peaks."""
    swinging = dict(tables)
    contributions = tables["measurement.mmm_weekly_contributions"].copy()
    control = (contributions["run_id"] == SHOWN_RUN) & (contributions["component"] == "price_index")
    signs = np.tile([1.0, -1.0], control.sum() // 2 + 1)[: control.sum()]
    contributions.loc[control, "contribution"] = 11_000.0 * signs
    swinging["measurement.mmm_weekly_contributions"] = contributions
    page = parse(build_report(swinging, tmp_path, run_id="swing", generated_at=GENERATED_AT))
    assert "price_index control 0 0.0 % [-11,000, 11,000]" in page.text("contributions")


def test_axis_tick_labels_never_overlap(tables, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every figure of the report (156 weeks), and the channel chart with many long channel
    names: no two tick labels of one axis overlap once drawn (slanted when needed)."""
    from triangulate.report import plots, render_report

    figures = []
    draw = plots._png

    def keep(fig):
        figures.append(fig)
        return draw(fig)

    monkeypatch.setattr(plots, "_png", keep)
    render_report(example_tables(n_weeks=156), run_id="ticks")
    assert len(figures) >= len(SECTIONS_WITH_PLOTS)
    names = [
        "google_search_nonbrand", "meta_advantage_plus", "tiktok_spark_ads",
        "youtube_connected_tv", "linear_tv_national", "podcast_host_read",
        "out_of_home_billboards", "affiliate_network", "pinterest_promoted",
        "snapchat_story_ads", "radio_local_spots",
    ]  # fmt: skip
    many = pd.DataFrame(
        {"MTA ROAS": np.linspace(0.5, 3, 11), "MMM ROAS": np.linspace(3, 0.5, 11)}, index=names
    )
    figures.append(plots.sources_side_by_side.figure(many, channel_colors(names), "USD"))
    for fig in figures:
        assert not plots.overlapping_tick_labels(fig), fig.axes[0].get_title()


def test_metadata_tables_print_numbers_not_notation() -> None:
    """Markdown tables for the Dagster UI: what a person acts on first, numbers with
    separators and fixed decimals, missing values as a dash."""
    from triangulate.report.format import METADATA_MISSING, markdown_table

    frame = pd.DataFrame(
        {
            "mroas": [1.23456, np.nan],
            "spend": [1_234_567.891, 0.0000004],
            "weeks": [3, 1200],
            "channel": ["tv", "meta"],
            "decision": ["scale", None],
            "confidence": [0.934, np.nan],
        }
    )
    text = markdown_table(frame, formats={"confidence": fmt_fraction_pct})
    lines = text.splitlines()
    assert lines[0] == "| channel | decision | confidence | mroas | spend | weeks |"
    assert lines[2] == "| tv | scale | 93.4 % | 1.23 | 1,234,567.89 | 3 |"
    assert (
        lines[3]
        == f"| meta | {METADATA_MISSING} | {METADATA_MISSING} | {METADATA_MISSING} | 0.00 | 1,200 |"
    )
    assert "e-" not in text and "e+" not in text and "nan" not in text.lower()


def test_the_experiments_table_says_why_a_test_has_no_result_and_counts_are_not_money(
    tables, tmp_path: Path
) -> None:
    """Issue #20: geo results as the experiments asset writes them, in a warehouse: the
    experiment that could not be analysed shows its status and the reason in its row, and
    an ``orders`` test shows incremental orders and the cost per order, not revenue."""
    from datetime import date

    from triangulate.geo.analysis import analyze_registry
    from triangulate.geo.registry import ExperimentSpec
    from triangulate.geo.simulation import synthetic_geo_panel

    panel = synthetic_geo_panel(n_geos=10, n_periods=40, period_days=7, seed=2)
    mart = panel.rename(columns={"date": "week_start", "value": "net_revenue"})
    mart = mart.assign(orders=mart["net_revenue"] / 80)
    start, end = date(2023, 8, 14), date(2023, 9, 10)

    def spec(id_, geos, metric):
        return ExperimentSpec(id_, "tv", "holdout", geos, None, start, end, metric, -4e4)

    results = analyze_registry(
        [spec("a_money", ("G01",), "net_revenue"), spec("b_orders", ("G02",), "orders"),
         spec("c_broken", ("G99",), "net_revenue")],
        mart,
    )  # fmt: skip
    assert list(results["status"]) == ["ok"] * 4 + ["error"]
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:
        replace_tables(
            conn,
            {
                "measurement.geo_experiment_results": results,
                "marts.reporting_currency": tables["marts.reporting_currency"],
            },
        )
        path = build_report_from_warehouse(conn, tmp_path / "reports", "geo")
    finally:
        conn.close()
    text = parse(path).text("experiments")
    note = results.loc[results["experiment_id"] == "c_broken", "notes"].iloc[0]
    assert "G99" in note and f"c_broken tv none net_revenue n/a n/a n/a n/a n/a -40,000 n/a n/a error: {note}" in text  # fmt: skip
    assert "status" in text and "Status error: the experiment was not analysed" in text
    orders = results[results["experiment_id"] == "b_orders"].iloc[0]
    assert f"{orders['incremental_conversions']:,.0f} orders" in text
    assert f"{orders['cost_per_incremental_conversion']:,.2f} per order" in text
    money = results[results["experiment_id"] == "a_money"].iloc[0]
    assert f"{money['incremental_revenue']:,.0f}" in text and f"{money['iroas']:,.2f}" in text
