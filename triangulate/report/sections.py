"""The report's sections: each turns the warehouse tables into cards, plots, tables, notes.

A section never fails because an upstream table is missing: it says which asset to
materialize instead. MMM sections (contributions, ROAS, response curves, budget plan)
show only the latest *published* run (:func:`~triangulate.report.tables.latest_published_run`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from triangulate.geo.panel import MetricLabels
from triangulate.report import plots
from triangulate.report.format import (
    MISSING,
    fmt_compact,
    fmt_date,
    fmt_datetime,
    fmt_fraction_pct,
    fmt_int,
    fmt_interval,
    fmt_money,
    fmt_p_value,
    fmt_pct,
    fmt_ratio,
)
from triangulate.report.tables import (
    BUDGET_PLAN,
    BUDGET_SUMMARY,
    DATA_QUALITY,
    EXPERIMENTS,
    MMM_CONTRIBUTIONS,
    MMM_CURVES,
    MMM_DIAGNOSTICS,
    MMM_SUMMARY,
    MTA_CREDIT,
    REPORT_TABLES,
    REVENUE,
    SPEND,
    TRIANGULATION,
    MMMRunChoice,
    as_bool,
    rows_of_run,
)

if TYPE_CHECKING:
    from triangulate.mmm.config import GateConfig


# ----------------------------------------------------------------------------- blocks
@dataclass(frozen=True)
class Card:
    label: str
    value: str
    detail: str = ""
    status: str = ""  # "", "good", "bad", "warn"


@dataclass(frozen=True)
class Cards:
    items: list[Card]
    kind: str = "cards"


@dataclass(frozen=True)
class Plot:
    """A PNG figure, embedded in the page as a base64 data URI."""

    png: bytes
    alt: str
    caption: str = ""
    kind: str = "plot"

    @property
    def data_uri(self) -> str:
        return plots.png_data_uri(self.png)


@dataclass(frozen=True)
class Cell:
    text: str
    css: str = ""
    breakable: bool = False
    """An identifier (``google_search_brand``): the page may break the line after each ``_``."""


@dataclass(frozen=True)
class Table:
    """Headers as ``(text, numeric)``; numeric columns are right-aligned."""

    headers: list[tuple[str, bool]]
    rows: list[list[Cell]]
    caption: str = ""
    kind: str = "table"


@dataclass(frozen=True)
class Note:
    text: str
    tone: str = "info"  # "info", "missing", "warn"
    kind: str = "note"


Block = Cards | Plot | Table | Note


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    intro: str
    blocks: list[Block] = field(default_factory=list)


SECTION_IDS = (
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
"""The ``id`` attribute of every section, in page order (for browser tests and links)."""


# ---------------------------------------------------------------------------- context
@dataclass(frozen=True)
class ReportContext:
    """Everything the sections share: checked tables, the MMM run shown, colours, units."""

    tables: Mapping[str, pd.DataFrame]
    run: MMMRunChoice
    colors: Mapping[str, str]
    currency: str
    gate: GateConfig | None
    default_horizon_weeks: int

    def missing(self, *names: str) -> list[Note]:
        """A "not available yet" note for each of ``names`` that has no rows."""
        return [
            Note(f"not available yet: materialize {REPORT_TABLES[n].asset}", tone="missing")
            for n in names
            if self.tables[n].empty
        ]

    def run_rows(self, name: str) -> tuple[pd.DataFrame, list[Note]]:
        """Rows of the shown MMM run in table ``name``, or the note saying why there are none."""
        if self.run.run_id is None:
            return pd.DataFrame(), [Note(self.run.why_none, tone="missing")]
        if self.tables[name].empty:
            return pd.DataFrame(), self.missing(name)
        rows = rows_of_run(self.tables[name], self.run.run_id)
        if rows.empty:
            return rows, [
                Note(
                    f"not available yet: {name} has no rows for MMM run {self.run.run_id}; "
                    f"materialize {REPORT_TABLES[name].asset}",
                    tone="missing",
                )
            ]
        return rows, []


def _num(header: str) -> tuple[str, bool]:
    return (header, True)


def _txt(header: str) -> tuple[str, bool]:
    return (header, False)


def _cells(*values: str | Cell) -> list[Cell]:
    return [v if isinstance(v, Cell) else Cell(v) for v in values]


def css_token(text: object) -> str:
    """A CSS class fragment from free text: ``"Shift budget away"`` -> ``shift-budget-away``."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")


def _channel_cell(channel: object) -> Cell:
    """A channel name cell, marked with the channel's colour by the page's CSS."""
    return Cell(str(channel), f"channel-cell ch-{css_token(channel)}", breakable=True)


def national_weekly(
    frame: pd.DataFrame, value: str, by: str | None = None
) -> pd.DataFrame | pd.Series:
    """Sum a week x geo table over geos: a Series by week, or week x ``by`` when given."""
    weeks = pd.to_datetime(frame["week_start"])
    if by is None:
        return frame[value].astype(float).groupby(weeks).sum().sort_index()
    return (
        frame.assign(week_start=weeks)
        .pivot_table(index="week_start", columns=by, values=value, aggfunc="sum", fill_value=0.0)
        .sort_index()
    )


def _sum_over_weeks(frame: pd.DataFrame, column: str, weeks: set[pd.Timestamp]) -> float:
    """Sum of ``column`` over the rows whose ``week_start`` is in ``weeks`` (NaN: no table)."""
    if frame.empty:
        return float("nan")
    return float(
        frame.loc[pd.to_datetime(frame["week_start"]).isin(weeks), column].astype(float).sum()
    )


# ---------------------------------------------------------------------------- sections
DECISION_WORDS = {
    "scale": "spend more",
    "shift_budget_away": "spend less",
    "hold": "hold",
    "test": "hold and test",
}


def answer(ctx: ReportContext) -> Section:
    """The answer first: what to do with each channel's budget next, with dates and how
    confident the model is (``measurement.budget_plan``, the same decisions as
    ``measurement.triangulation``)."""
    plan, notes = ctx.run_rows(BUDGET_PLAN)
    blocks: list[Block] = list(notes)
    title = "What to do next"
    if plan.empty or "decision" not in plan:
        if not notes:
            blocks.append(
                Note(
                    "the budget plan of this run has no decisions: re-materialize "
                    f"{REPORT_TABLES[BUDGET_PLAN].asset}",
                    tone="missing",
                )
            )
        return Section("answer", title, "The recommendation per channel.", blocks)
    first = plan.iloc[0]
    warning = str(first.get("staleness_warning") or "")
    if warning:
        blocks.append(Note(f"Stale data: {warning}.", tone="warn"))
    summary_rows, _ = ctx.run_rows(BUDGET_SUMMARY)
    cards = [
        Card("Plan period", f"{fmt_date(first.get('plan_start'))} to {fmt_date(first.get('plan_end'))}",
             f"{int(first.get('horizon_weeks', ctx.default_horizon_weeks))} weeks; data end {fmt_date(first.get('data_end'))}"),
    ]  # fmt: skip
    alternative = ""
    if not summary_rows.empty:
        recommended = as_bool(summary_rows["recommended"])
        for is_shown, (_, s) in zip(recommended, summary_rows.iterrows(), strict=True):
            value = (
                f"{fmt_money(s['expected_value'])} {ctx.currency} "
                f"(94% HDI {fmt_interval(s['value_hdi_low'], s['value_hdi_high'], fmt_money)})"
            )
            if is_shown:
                cards.append(
                    Card(
                        "Expected gain of the plan",
                        f"{fmt_money(s['expected_value'])} {ctx.currency}",
                        f"94% HDI {fmt_interval(s['value_hdi_low'], s['value_hdi_high'], fmt_money)}; "
                        f"{fmt_fraction_pct(s['value_pct_of_revenue'])} of revenue",
                        "good" if s["expected_value"] > 0 else "",
                    )
                )
                cards.append(
                    Card(
                        "P(plan beats current)",
                        fmt_fraction_pct(s["p_beats_current"]),
                        f"spend {fmt_money(s['current_spend'])} -> {fmt_money(s['planned_spend'])} {ctx.currency}",
                    )
                )
            else:
                alternative = (
                    f"The other plan ({s['plan']}): spend {fmt_money(s['current_spend'])} -> "
                    f"{fmt_money(s['planned_spend'])} {ctx.currency}, expected gain {value}, "
                    f"P(beats current) {fmt_fraction_pct(s['p_beats_current'])}."
                )
    blocks.append(Cards(cards))
    rows = []
    for _, r in plan.sort_values("channel").iterrows():
        now, planned = float(r["current_spend"]), float(r["recommended_spend"])
        rows.append(
            _cells(
                _channel_cell(r["channel"]),
                Cell(
                    DECISION_WORDS.get(str(r["decision"]), str(r["decision"])),
                    f"decision-{r['decision']}",
                ),
                f"{fmt_money(now)} -> {fmt_money(planned)}",
                fmt_fraction_pct((planned - now) / now) if now else MISSING,
                fmt_fraction_pct(r.get("confidence")),
                Cell(str(r.get("reason", "")), "wrap"),
            )
        )
    mode = str(first.get("plan", "total"))
    gain_word = "gain: extra net revenue minus what the extra spend must earn back at the target"
    blocks.append(
        Table(
            [
                _txt("channel"),
                _txt("decision"),
                _num(f"spend ({ctx.currency}, plan period)"),
                _num("change"),
                _num("confidence"),
                _txt("why"),
            ],
            rows,
            f"Plan shown: {'spend more or less overall' if mode == 'total' else 'the same total, re-split'} "
            f"({mode}). Confidence = posterior probability that the move's direction is right (for a "
            f"held channel: that its marginal ROAS is above target). Expected {gain_word}. "
            + alternative,
        )
    )
    return Section(
        "answer",
        title,
        "One recommendation per channel from one rule on the media mix model's posterior: budget "
        "moves only where the model is confident the move pays; channels it cannot tell apart are "
        "held, and the wide ones are named for a geo test. The same decisions appear in the "
        "triangulation table below.",
        blocks,
    )


def summary(ctx: ReportContext) -> Section:
    """Headline: period, total spend, net revenue, blended ROAS, data quality, MMM run."""
    spend, revenue = ctx.tables[SPEND], ctx.tables[REVENUE]
    weeks_spend = set(pd.to_datetime(spend["week_start"])) if not spend.empty else set()
    weeks_revenue = set(pd.to_datetime(revenue["week_start"])) if not revenue.empty else set()
    both = (
        weeks_spend & weeks_revenue
        if weeks_spend and weeks_revenue
        else weeks_spend | weeks_revenue
    )
    cards = []
    if both:
        cards.append(
            Card("Period", f"{fmt_date(min(both))} to {fmt_date(max(both))}", f"{len(both)} weeks")
        )
    else:
        cards.append(Card("Period", MISSING, "no weekly spend or revenue yet"))
    total_spend = _sum_over_weeks(spend, "spend", both)
    net = _sum_over_weeks(revenue, "net_revenue", both)
    cards.append(
        Card("Media spend", f"{fmt_compact(total_spend)} {ctx.currency}", "all channels and geos")
    )
    cards.append(
        Card("Net revenue", f"{fmt_compact(net)} {ctx.currency}", "after refunds, all geos")
    )
    blended = net / total_spend if np.isfinite(total_spend) and total_spend > 0 else np.nan
    cards.append(
        Card(
            "Blended ROAS",
            fmt_ratio(blended),
            "all net revenue / all media spend (not incremental)",
        )
    )
    cards.append(_quality_card(ctx.tables[DATA_QUALITY]))
    if ctx.run.run_id is not None:
        cards.append(
            Card(
                "MMM run shown",
                ctx.run.run_id,
                f"fitted {fmt_datetime(ctx.run.fitted_at)}, published",
                "good",
            )
        )
    else:
        cards.append(Card("MMM run shown", "none", ctx.run.why_none, "warn"))
    return Section(
        "summary",
        "Summary",
        f"Totals over the weeks present in both the spend and the revenue tables. Money in {ctx.currency}.",
        [Cards(cards), *ctx.missing(SPEND, REVENUE)],
    )


def _latest_quality(quality: pd.DataFrame) -> pd.DataFrame:
    """The latest gate result per table."""
    ordered = quality.assign(_t=pd.to_datetime(quality["checked_at"])).sort_values(
        ["table_name", "_t"]
    )
    return ordered.groupby("table_name", sort=True).tail(1).reset_index(drop=True)


def _quality_card(quality: pd.DataFrame) -> Card:
    if quality.empty:
        return Card("Data quality", "not checked", "no gate results recorded yet", "warn")
    latest = _latest_quality(quality)
    failed = latest[~as_bool(latest["success"])]
    checked = f"latest check {fmt_datetime(latest['_t'].max())}"
    if failed.empty:
        return Card("Data quality", f"all {len(latest)} gates passed", checked, "good")
    names = ", ".join(failed["table_name"].astype(str))
    return Card("Data quality", f"{len(failed)} of {len(latest)} gates failed", names, "bad")


def spend_revenue(ctx: ReportContext) -> Section:
    spend, revenue = ctx.tables[SPEND], ctx.tables[REVENUE]
    blocks: list[Block] = [*ctx.missing(SPEND, REVENUE)]
    if not spend.empty or not revenue.empty:
        by_channel = (
            national_weekly(spend, "spend", by="channel") if not spend.empty else pd.DataFrame()
        )
        net = (
            national_weekly(revenue, "net_revenue") if not revenue.empty else pd.Series(dtype=float)
        )
        png = plots.spend_and_revenue(by_channel, net, ctx.colors, ctx.currency)
        blocks.insert(0, Plot(png, "Weekly spend by channel, stacked, with the net revenue line"))
    if not spend.empty:
        totals = spend.groupby("channel")[["spend", "impressions", "clicks"]].sum().astype(float)
        totals = totals.sort_values("spend", ascending=False)
        share = totals["spend"] / totals["spend"].sum()
        rows = [
            _cells(
                _channel_cell(ch),
                fmt_money(r["spend"]),
                fmt_fraction_pct(share[ch]),
                fmt_int(r["impressions"]),
                fmt_int(r["clicks"]),
                fmt_ratio(r["spend"] / r["clicks"]) if r["clicks"] > 0 else MISSING,
            )
            for ch, r in totals.iterrows()
        ]
        blocks.append(
            Table(
                [
                    _txt("channel"),
                    _num(f"spend ({ctx.currency})"),
                    _num("share of spend"),
                    _num("impressions"),
                    _num("clicks"),
                    _num(f"cost per click ({ctx.currency})"),
                ],
                rows,
                "Totals over every week in the spend table, all geos.",
            )
        )
    return Section(
        "spend-revenue",
        "Spend and revenue over time",
        f"National weekly totals (sum over geos). Money in {ctx.currency} per week.",
        blocks,
    )


_KIND_ORDER = {"baseline": 0, "trend": 1, "seasonality": 2, "control": 3, "other": 4, "channel": 5}


def contributions(ctx: ReportContext) -> Section:
    rows, notes = ctx.run_rows(MMM_CONTRIBUTIONS)
    blocks: list[Block] = list(notes)
    if not rows.empty:
        wide = national_weekly(rows, "contribution", by="component")
        if "component_kind" in rows:
            kinds = rows.groupby("component")["component_kind"].first().astype(str)
        else:
            kinds = pd.Series({c: "channel" if c in ctx.colors else "other" for c in wide.columns})
        order = sorted(
            wide.columns, key=lambda c: (_KIND_ORDER.get(kinds.get(c, "other"), 4), str(c))
        )
        wide = wide[order]
        colors = plots.component_colors(order, {c: ctx.colors[c] for c in order if c in ctx.colors})
        revenue = ctx.tables[REVENUE]
        actual = None
        if not revenue.empty:
            actual = national_weekly(revenue, "net_revenue")
            actual = actual[actual.index.isin(wide.index)]
        png = plots.contributions_over_time(wide, colors, ctx.currency, actual)
        blocks.append(Plot(png, "Stacked weekly contribution of every model component"))
        blocks.extend(model_fit(wide, actual, ctx.currency))
        totals = wide.sum().sort_values(ascending=False)
        fitted = totals.sum()
        blocks.append(
            Table(
                [
                    _txt("component"),
                    _txt("kind"),
                    _num(f"contribution ({ctx.currency})"),
                    _num("share of fitted revenue"),
                    _num(f"weekly range ({ctx.currency})"),
                ],
                [
                    _cells(
                        _channel_cell(c) if c in ctx.colors else str(c),
                        str(kinds.get(c, "other")),
                        fmt_money(v),
                        fmt_fraction_pct(v / fitted) if fitted else MISSING,
                        fmt_interval(wide[c].min(), wide[c].max(), fmt_money),
                    )
                    for c, v in totals.items()
                ],
                f"Sum over {len(wide)} weeks of MMM run {ctx.run.run_id}, and the range of its "
                "weekly values: a control that raises revenue in some weeks and lowers it in "
                "others can sum to about 0 while moving single weeks by thousands.",
            )
        )
    return Section(
        "contributions",
        "Channel contributions over time",
        "What the media mix model attributes each week's net revenue to: baseline, trend, "
        "seasonality, controls and each channel. Negative contributions stack below zero.",
        blocks,
    )


def r_squared(actual: pd.Series, predicted: pd.Series) -> float:
    """Coefficient of determination of ``predicted`` for ``actual`` (same index): 1 minus
    the residual sum of squares over the total sum of squares around the actual mean."""
    a, p = actual.to_numpy(float), predicted.to_numpy(float)
    keep = np.isfinite(a) & np.isfinite(p)
    a, p = a[keep], p[keep]
    total = float(((a - a.mean()) ** 2).sum()) if a.size else 0.0
    return 1.0 - float(((a - p) ** 2).sum()) / total if total > 0 else float("nan")


def model_fit(wide: pd.DataFrame, actual: pd.Series | None, currency: str) -> list[Block]:
    """Actual vs predicted weekly net revenue (predicted: the sum of the components) with
    R² and MAPE over the weeks both have; nothing without revenue."""
    if actual is None or actual.empty:
        return []
    predicted = wide.sum(axis=1)
    weeks = predicted.index.intersection(actual.index)
    if len(weeks) < 2:
        return []
    actual, predicted = actual.loc[weeks].astype(float), predicted.loc[weeks].astype(float)
    r2 = r_squared(actual, predicted)
    nonzero = actual != 0
    mape = float((abs(actual - predicted)[nonzero] / abs(actual[nonzero])).mean())
    return [
        Cards(
            [
                Card(
                    "R² (in sample)",
                    fmt_ratio(r2, 3),
                    f"{len(weeks)} weeks, national",
                    "good" if r2 >= 0.8 else "warn",
                ),
                Card("MAPE (in sample)", fmt_fraction_pct(mape), "mean absolute % error per week"),
            ]
        ),
        Plot(
            plots.actual_vs_predicted(actual, predicted, currency, r2),
            "Actual vs predicted weekly net revenue",
            f"Predicted = the sum of the components above. R² = {fmt_ratio(r2, 3)}: the share of the "
            "week-to-week variation in net revenue the model reproduces.",
        ),
    ]


def channel_shares(rows: pd.DataFrame) -> pd.DataFrame:
    """Each channel's share of media spend and of media effect (MMM contribution), from one
    run's ``measurement.mmm_channel_summary`` rows; index channel."""
    spend = rows.set_index(rows["channel"].astype(str))["spend"].astype(float)
    effect = rows.set_index(rows["channel"].astype(str))["contribution"].astype(float)
    return pd.DataFrame(
        {
            "spend_share": spend / spend.sum() if spend.sum() else np.nan,
            "effect_share": effect / effect.sum() if effect.sum() else np.nan,
        }
    )


def roas(ctx: ReportContext) -> Section:
    rows, notes = ctx.run_rows(MMM_SUMMARY)
    blocks: list[Block] = list(notes)
    if not rows.empty:
        plan, _ = ctx.run_rows(BUDGET_PLAN)
        rows = rows.drop(columns=["mroas_hdi_low", "mroas_hdi_high"], errors="ignore")
        if {"mroas_hdi_low", "mroas_hdi_high"} <= set(plan):
            # the plan's marginal ROAS interval (same run, same posterior)
            hdi = plan.set_index(plan["channel"].astype(str))[["mroas_hdi_low", "mroas_hdi_high"]]
            rows = rows.join(hdi, on=rows["channel"].astype(str))
        else:
            rows = rows.assign(mroas_hdi_low=np.nan, mroas_hdi_high=np.nan)
        blocks.append(
            Plot(
                plots.roas_with_hdi(rows, ctx.colors, ctx.currency), "ROAS per channel with 94% HDI"
            )
        )
        shares = channel_shares(rows)
        blocks.append(
            Plot(
                plots.spend_vs_effect_share(shares, ctx.colors),
                "Share of spend vs share of effect per channel",
                "A channel whose share of effect is above its share of spend returns more than "
                "the average channel per unit of spend.",
            )
        )
        table_rows = [
            _cells(
                _channel_cell(r["channel"]),
                fmt_money(r["spend"]),
                fmt_fraction_pct(shares.at[str(r["channel"]), "spend_share"]),
                fmt_money(r["contribution"]),
                fmt_fraction_pct(shares.at[str(r["channel"]), "effect_share"]),
                fmt_interval(r["contribution_hdi_low"], r["contribution_hdi_high"], fmt_money),
                fmt_ratio(r["roas"]),
                fmt_interval(r["roas_hdi_low"], r["roas_hdi_high"]),
                fmt_ratio(r["mroas"]),
                fmt_interval(r["mroas_hdi_low"], r["mroas_hdi_high"]),
            )
            for _, r in rows.sort_values("roas", ascending=False).iterrows()
        ]
        blocks.append(
            Table(
                [
                    _txt("channel"),
                    _num(f"spend ({ctx.currency})"),
                    _num("share of spend"),
                    _num(f"contribution ({ctx.currency})"),
                    _num("share of effect"),
                    _num("contribution 94 % HDI"),
                    _num("ROAS"),
                    _num("ROAS 94 % HDI"),
                    _num("mROAS"),
                    _num("mROAS 94 % HDI"),
                ],
                table_rows,
                f"MMM run {ctx.run.run_id}. ROAS = contribution / spend over the fit period; mROAS = "
                "extra contribution per extra unit of spend at the current level, its interval "
                "from the budget plan of the same run. Shares are of all channels' spend and "
                "of all channels' contribution.",
            )
        )
    return Section(
        "roas",
        "Return on ad spend per channel",
        "Posterior mean ROAS with its 94 % highest-density interval (HDI): the model is 94 % "
        "sure the true ROAS is inside the bar. A diamond left of the dot means the next unit of "
        "spend earns less than the average one (saturation).",
        blocks,
    )


def plan_horizon_weeks(plan: pd.DataFrame, default: int) -> tuple[int, bool]:
    """Weeks the budget plan's spend totals cover, and whether it came from the table."""
    if "horizon_weeks" in plan and plan["horizon_weeks"].notna().any():
        values = plan["horizon_weeks"].dropna().astype(int).unique()
        if len(values) != 1:
            raise ValueError(
                f"{BUDGET_PLAN}: one run must have one horizon_weeks, got {sorted(values.tolist())}"
            )
        return int(values[0]), True
    return default, False


def weekly_plan_spend(plan: pd.DataFrame, horizon_weeks: int) -> pd.DataFrame:
    """Budget-plan spend per week: ``current_spend / horizon_weeks`` (same for recommended).

    The plan's spend columns are totals over its horizon; the response curves' x axis is
    national spend per week, so the marks on the curves are these weekly values.
    """
    return pd.DataFrame(
        {
            "current_weekly_spend": plan["current_spend"].astype(float).to_numpy() / horizon_weeks,
            "recommended_weekly_spend": plan["recommended_spend"].astype(float).to_numpy()
            / horizon_weeks,
        },
        index=plan["channel"].astype(str).to_numpy(),
    )


def response_curves(ctx: ReportContext) -> Section:
    curves, notes = ctx.run_rows(MMM_CURVES)
    blocks: list[Block] = list(notes)
    intro = (
        f"Steady-state contribution per week at each level of national spend per week "
        f"({ctx.currency}/week on both axes): where a curve flattens, more spend buys little. "
    )
    if not curves.empty:
        plan, plan_notes = ctx.run_rows(BUDGET_PLAN)
        if plan.empty:
            marks = pd.DataFrame(columns=["current_weekly_spend", "recommended_weekly_spend"])
            blocks.append(
                Note(
                    "current and recommended spend are not marked: " + plan_notes[0].text, "missing"
                )
            )
        else:
            weeks, known = plan_horizon_weeks(plan, ctx.default_horizon_weeks)
            marks = weekly_plan_spend(plan, weeks)
            intro += (
                f"The marks are the budget plan's current and recommended spend over its {weeks}-week "
                f"horizon divided by {weeks}, i.e. {ctx.currency} per week"
                + (
                    "."
                    if known
                    else " (horizon assumed from mmm.yaml: the plan has no horizon_weeks)."
                )
            )
        blocks.append(
            Plot(
                plots.response_curves(curves, marks, ctx.colors, ctx.currency),
                "Response curve per channel with current and recommended weekly spend",
            )
        )
    return Section("response-curves", "Response curves", intro, blocks)


def triangulation(ctx: ReportContext) -> Section:
    table = ctx.tables[TRIANGULATION]
    blocks: list[Block] = list(ctx.missing(TRIANGULATION))
    if not table.empty:
        table = table.sort_values("channel").reset_index(drop=True)
        blocks.append(
            Plot(
                plots.sources_side_by_side(
                    plots.sources_by_channel(table), ctx.colors, ctx.currency
                ),
                "ROAS per channel from MTA, MMM and geo experiments side by side",
            )
        )
        headers = [_txt("channel"), _num("MTA ROAS"), _num("MMM ROAS")]
        headers += [_num("MMM mROAS")] if "mmm_mroas" in table else []
        headers += [
            _num("experiment iROAS"),
            _num("MTA calibration factor"),
            _txt("decision"),
            _txt("reason"),
        ]
        rows = []
        for _, r in table.iterrows():
            values = [
                _channel_cell(r["channel"]),
                fmt_ratio(r["mta_roas"]),
                fmt_ratio(r["mmm_roas"]),
            ]
            values += [fmt_ratio(r["mmm_mroas"])] if "mmm_mroas" in table else []
            values += [
                fmt_ratio(r["experiment_iroas"]),
                fmt_ratio(r["mta_calibration_factor"]),
                Cell(str(r["decision"]), f"decision decision-{css_token(r['decision'])}"),
                Cell(str(r["reason"]), "reason"),
            ]
            rows.append(_cells(*values))
        blocks.append(
            Table(
                headers,
                rows,
                "MTA calibration factor: multiply MTA-credited revenue by it to match the causal "
                "estimate (experiment when there is one, else MMM).",
            )
        )
    credit = ctx.tables[MTA_CREDIT]
    if not credit.empty:
        shares = credit.pivot_table(
            index="channel", columns="model", values="revenue", aggfunc="sum", fill_value=0.0
        )
        shares = shares / shares.sum()
        blocks.append(
            Table(
                [_txt("channel")] + [_num(str(m)) for m in shares.columns],
                [
                    _cells(_channel_cell(ch), *(fmt_fraction_pct(v) for v in r))
                    for ch, r in shares.iterrows()
                ],
                "Share of MTA-credited revenue per channel under each attribution model "
                "(each column sums to 100 %).",
            )
        )
    else:
        blocks.extend(ctx.missing(MTA_CREDIT))
    return Section(
        "triangulation",
        "MTA vs MMM vs experiments",
        "Same business, two stories: click-path attribution (MTA) credits what users touched "
        "before buying; the media mix model and geo experiments estimate what the spend caused. "
        "Each decision says what to do with the channel and why.",
        blocks,
    )


def budget_plan(ctx: ReportContext) -> Section:
    plan, notes = ctx.run_rows(BUDGET_PLAN)
    blocks: list[Block] = list(notes)
    intro = "The media mix model's re-split of the current budget (same total) for the next weeks."
    if not plan.empty:
        weeks, known = plan_horizon_weeks(plan, ctx.default_horizon_weeks)
        intro = (
            f"The media mix model's re-split of the current budget (same total) for the next {weeks} "
            f"weeks. Spend and contribution are totals over those {weeks} weeks in {ctx.currency}"
            + ("." if known else " (horizon assumed from mmm.yaml: the plan has no horizon_weeks).")
        )
        plan = plan.sort_values("channel").reset_index(drop=True)
        blocks.append(
            Plot(
                plots.budget_plan(plan, ctx.colors, ctx.currency, weeks),
                "Current vs recommended spend and expected contribution change per channel",
            )
        )
        has_hdi = {
            "expected_contribution_change_hdi_low",
            "expected_contribution_change_hdi_high",
        } <= set(plan)
        rows = []
        for _, r in plan.iterrows():
            current, recommended = float(r["current_spend"]), float(r["recommended_spend"])
            rows.append(
                _cells(
                    _channel_cell(r["channel"]),
                    fmt_money(current),
                    fmt_money(recommended),
                    fmt_money(recommended - current),
                    fmt_fraction_pct((recommended - current) / current) if current else MISSING,
                    fmt_money(r["expected_contribution_change"]),
                    fmt_interval(
                        r["expected_contribution_change_hdi_low"],
                        r["expected_contribution_change_hdi_high"],
                        fmt_money,
                    )
                    if has_hdi
                    else MISSING,
                )
            )
        current, recommended = (
            plan["current_spend"].astype(float).sum(),
            plan["recommended_spend"].astype(float).sum(),
        )
        rows.append(
            _cells(
                Cell("total", "total"),
                Cell(fmt_money(current), "total"),
                Cell(fmt_money(recommended), "total"),
                Cell(fmt_money(recommended - current), "total"),
                Cell(
                    fmt_fraction_pct((recommended - current) / current) if current else MISSING,
                    "total",
                ),
                Cell(fmt_money(plan["expected_contribution_change"].astype(float).sum()), "total"),
                Cell(MISSING, "total"),
            )
        )
        blocks.append(
            Table(
                [
                    _txt("channel"),
                    _num(f"current spend ({ctx.currency})"),
                    _num(f"recommended spend ({ctx.currency})"),
                    _num(f"change ({ctx.currency})"),
                    _num("change (%)"),
                    _num(f"expected contribution change ({ctx.currency})"),
                    _num("94 % HDI"),
                ],
                rows,
                f"MMM run {ctx.run.run_id}. The total's interval is not the sum of the channels' intervals.",
            )
        )
    return Section("budget-plan", "Budget plan", intro, blocks)


def _experiment_status(r: pd.Series) -> str:
    """``status: notes`` of a result row (``error``: why it was not analysed; ``warning``:
    e.g. it overlaps another test), ``ok`` when there is nothing to say."""
    status = "" if pd.isna(r.get("status")) else str(r.get("status") or "")
    notes = "" if pd.isna(r.get("notes")) else str(r.get("notes") or "").strip()
    status = status or "ok"
    return f"{status}: {notes}" if notes else status


def _is_count(r: pd.Series) -> bool:
    return not MetricLabels.is_money(r.get("metric_kind"))


def experiments(ctx: ReportContext) -> Section:
    """One row per experiment and method. A money metric's row shows incremental revenue
    and iROAS; a count metric's (``metric_kind`` count: orders) the incremental count and
    the cost per incremental outcome. An experiment that was not analysed (``status``
    error) or carries a note shows them in a status column rather than blank estimates."""
    results = ctx.tables[EXPERIMENTS]
    blocks: list[Block] = list(ctx.missing(EXPERIMENTS))
    if not results.empty:
        results = results.sort_values(["experiment_id", "method"]).reset_index(drop=True)
        has_iroas_ci = {"iroas_ci_low", "iroas_ci_high"} <= set(results)
        counts = results.apply(_is_count, axis=1) if "metric_kind" in results else None
        any_count = counts is not None and bool(counts.any())
        statuses = results.apply(_experiment_status, axis=1)
        status_column = bool((statuses != "ok").any())
        errors = "status" in results and bool((results["status"] == "error").any())
        methods = (
            results["interval_method"].dropna().astype(str).unique()
            if "interval_method" in results
            else []
        )
        method_column = len(methods) > 1
        rows = []
        for i, r in results.iterrows():
            count = any_count and bool(counts.iloc[i])
            if count:
                metric = str(r["metric"]) if pd.notna(r.get("metric")) else ""
                unit = f" {metric}" if metric else ""
                per = (
                    MetricLabels(metric, money=False).unit.replace("_", " ")
                    if metric
                    else "outcome"
                )
                lift_abs = fmt_ratio(r["lift_abs"])
                lift_ci = fmt_interval(r["ci_low"], r["ci_high"])
                incremental = f"{fmt_int(r.get('incremental_conversions'))}{unit}"
                ratio = f"{fmt_ratio(r.get('cost_per_incremental_conversion'))} per {per}"
                ratio_ci = fmt_interval(
                    r.get("cost_per_incremental_conversion_ci_low"),
                    r.get("cost_per_incremental_conversion_ci_high"),
                )
            else:
                lift_abs = fmt_money(r["lift_abs"])
                lift_ci = fmt_interval(r["ci_low"], r["ci_high"], fmt_money)
                incremental = fmt_money(r["incremental_revenue"])
                ratio = fmt_ratio(r["iroas"])
                ratio_ci = (
                    fmt_interval(r["iroas_ci_low"], r["iroas_ci_high"]) if has_iroas_ci else ""
                )
            rows.append(
                _cells(
                    Cell(str(r["experiment_id"]), breakable=True),
                    _channel_cell(r["channel"]),
                    Cell(str(r["method"]), breakable=True),
                    *([Cell(str(r["metric"]), breakable=True)] if any_count else []),
                    fmt_pct(r["lift_pct"]),
                    lift_abs,
                    lift_ci,
                    *([str(r["interval_method"])] if method_column else []),
                    fmt_p_value(r["p_value"]),
                    incremental,
                    fmt_money(r["spend_change"]),
                    ratio,
                    *([ratio_ci] if has_iroas_ci else []),
                    *([Cell(statuses.iloc[i], "status-note")] if status_column else []),
                )
            )
        headers = [
            _txt("experiment"),
            _txt("channel"),
            _txt("method"),
        ]
        headers += [_txt("metric")] if any_count else []
        headers += [
            _num("lift (%)"),
            _num("lift (metric units)"),
            _num("lift interval"),
        ]
        headers += [_txt("interval method")] if method_column else []
        headers += [
            _num("p-value"),
            _num(
                f"incremental revenue ({ctx.currency}) or count"
                if any_count
                else f"incremental revenue ({ctx.currency})"
            ),
            _num(f"spend change ({ctx.currency})"),
            _num(f"iROAS or cost per outcome ({ctx.currency})" if any_count else "iROAS"),
        ]
        headers += [_num("iROAS interval" if not any_count else "interval")] if has_iroas_ci else []
        headers += [_txt("status")] if status_column else []
        caption = (
            "iROAS = incremental revenue / spend change over the test window. "
            "One row per experiment and estimation method."
        )
        if any_count:
            caption += (
                " A count metric (orders) has no revenue: its row shows the incremental count "
                "and the cost per incremental outcome = spend change / incremental count."
            )
        if errors:
            caption += " Status error: the experiment was not analysed; the note says why."
        if len(methods) == 1:
            caption += f" Lift intervals: {methods[0]}."
        blocks.append(Table(headers, rows, caption))
    return Section(
        "experiments",
        "Geo experiment results",
        "Holdout and heavy-up tests on groups of geos: the causal lift of a channel, measured "
        "against a synthetic control built from the untreated geos.",
        blocks,
    )


def data_quality(ctx: ReportContext) -> Section:
    quality = ctx.tables[DATA_QUALITY]
    blocks: list[Block] = list(ctx.missing(DATA_QUALITY))
    if not quality.empty:
        latest = _latest_quality(quality)
        blocks.append(Cards([_quality_card(quality)]))
        rows = [
            _cells(
                str(r["table_name"]),
                fmt_datetime(r["checked_at"]),
                Cell("passed", "status-good") if ok else Cell("failed", "status-bad"),
                fmt_int(r["failed_expectations"]),
                Cell("" if pd.isna(r["message"]) else str(r["message"]), "reason"),
            )
            for ok, (_, r) in zip(as_bool(latest["success"]), latest.iterrows(), strict=True)
        ]
        blocks.append(
            Table(
                [
                    _txt("table"),
                    _txt("checked at"),
                    _txt("gate"),
                    _num("failed expectations"),
                    _txt("message"),
                ],
                rows,
                "Latest Great Expectations gate result per table. A failed gate blocks the tables downstream of it.",
            )
        )
    return Section(
        "data-quality",
        "Data quality",
        "Expectation suites run on the warehouse tables before any model reads them.",
        blocks,
    )


_MAX_DIAGNOSTIC_RUNS = 10


def _gate_cell(text: str, passed: bool | None) -> Cell:
    """A diagnostic value, red when it misses its gate (``passed`` None: no gate known)."""
    return Cell(text, "status-bad" if passed is False else "")


def diagnostics(ctx: ReportContext) -> Section:
    runs = ctx.tables[MMM_DIAGNOSTICS]
    blocks: list[Block] = list(ctx.missing(MMM_DIAGNOSTICS))
    gate = ctx.gate
    if not runs.empty:
        runs = runs.assign(_t=pd.to_datetime(runs["fitted_at"])).sort_values("_t", ascending=False)
        rows = []
        for _, r in runs.head(_MAX_DIAGNOSTIC_RUNS).iterrows():
            shown = str(r["run_id"]) == ctx.run.run_id
            published = bool(as_bool(pd.Series([r["published"]])).iloc[0])
            rhat, ess, div = (
                float(r["r_hat_max"]),
                float(r["ess_bulk_min"]),
                float(r["divergences"]),
            )
            mape_in, mape_out = float(r["mape_in_sample"]), float(r["mape_holdout"])
            rows.append(
                _cells(
                    Cell(
                        str(r["run_id"]) + (" (shown)" if shown else ""),
                        "shown-run" if shown else "",
                    ),
                    fmt_datetime(r["fitted_at"]),
                    _gate_cell(f"{rhat:.3f}", gate and rhat <= gate.r_hat_max),
                    _gate_cell(fmt_int(ess), gate and ess >= gate.ess_bulk_min),
                    _gate_cell(fmt_int(div), gate and div <= gate.max_divergences),
                    _gate_cell(
                        fmt_fraction_pct(mape_in), gate and mape_in <= gate.mape_in_sample_max
                    ),
                    _gate_cell(
                        fmt_fraction_pct(mape_out),
                        gate and (not np.isfinite(mape_out) or mape_out <= gate.mape_holdout_max),
                    ),
                    Cell(
                        "yes" if published else "no", "status-good" if published else "status-bad"
                    ),
                )
            )
        caption = (
            f"Latest {min(len(runs), _MAX_DIAGNOSTIC_RUNS)} of {len(runs)} run(s), newest first."
        )
        if gate is not None:
            caption += (
                f" Gates (mmm.yaml): R-hat ≤ {gate.r_hat_max}, bulk ESS ≥ {gate.ess_bulk_min:g}, "
                f"divergences ≤ {gate.max_divergences}, in-sample MAPE ≤ {100 * gate.mape_in_sample_max:g} %, "
                f"holdout MAPE ≤ {100 * gate.mape_holdout_max:g} %; red cells miss a gate. "
                "Only runs that pass every gate are published."
            )
        blocks.append(
            Table(
                [
                    _txt("run"),
                    _txt("fitted at"),
                    _num("R-hat max"),
                    _num("bulk ESS min"),
                    _num("divergences"),
                    _num("MAPE in-sample"),
                    _num("MAPE holdout"),
                    _txt("published"),
                ],
                rows,
                caption,
            )
        )
    return Section(
        "diagnostics",
        "Model diagnostics",
        "Whether the MMM sampler converged (R-hat near 1, enough effective draws, no divergences) "
        "and how well the model fits revenue it saw (in-sample) and did not see (holdout).",
        blocks,
    )


SECTION_BUILDERS: tuple[Callable[[ReportContext], Section], ...] = (
    answer,
    summary,
    spend_revenue,
    contributions,
    roas,
    response_curves,
    triangulation,
    budget_plan,
    experiments,
    data_quality,
    diagnostics,
)
