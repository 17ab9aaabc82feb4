"""The report's figures, drawn with matplotlib's Agg renderer and returned as PNG bytes.

Figures are built with ``matplotlib.figure.Figure`` directly (no ``pyplot``), so no global
backend or figure registry is touched and nothing needs a display. Every channel keeps
one colour in every figure (:func:`channel_colors`). Money axes are in the reporting
currency; time axes are weeks (Monday starts).
"""

from __future__ import annotations

import base64
import functools
import io
import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from triangulate.report.format import fmt_compact, fmt_ratio

DPI = 100
WIDTH_IN = 12.0
"""Figure width in inches; at ``DPI`` this is the report's content width in pixels."""

_CHANNEL_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
)
_OTHER_COMPONENT_PALETTE = ("#4d4d4d", "#969696", "#c7c7c7", "#a6761d", "#e6ab02", "#666666")
SOURCE_COLORS = {
    "MTA ROAS": "#9e9e9e",
    "MMM ROAS": "#08519c",
    "MMM mROAS": "#6baed6",
    "experiment iROAS": "#e6550d",
}
"""Colours of the measurement sources in the "same business, two stories" chart."""


def channel_colors(paid: Iterable[str], others: Iterable[str] = ()) -> dict[str, str]:
    """One colour per channel: paid channels first (sorted by name), then the rest.

    Paid channels (those with spend) take the first palette slots, so their colours do not
    move when attribution adds non-paid channels such as ``direct`` or ``organic``.
    """
    paid_names = sorted({str(c) for c in paid})
    names = paid_names + sorted({str(c) for c in others} - set(paid_names))
    return {name: _CHANNEL_PALETTE[i % len(_CHANNEL_PALETTE)] for i, name in enumerate(names)}


def component_colors(components: Iterable[str], channels: Mapping[str, str]) -> dict[str, str]:
    """Channel colours for channel components; greys and browns for the rest (baseline, ...)."""
    others = sorted({str(c) for c in components} - set(channels))
    colors = {
        c: _OTHER_COMPONENT_PALETTE[i % len(_OTHER_COMPONENT_PALETTE)] for i, c in enumerate(others)
    }
    return {str(c): channels.get(str(c), colors.get(str(c), "#999999")) for c in components}


def _money_axis(axis, currency: str, label: str) -> None:
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_compact(v)))
    axis.set_label_text(f"{label} ({currency})")


def _style(ax) -> None:
    ax.grid(True, axis="y", color="#e0e0e0", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _legend_top_of_stack_first(ax) -> None:
    """Legend beside the plot, lines first, then stacked areas from the top of the stack down."""
    handles, labels = ax.get_legend_handles_labels()
    lines = [(h, lab) for h, lab in zip(handles, labels, strict=True) if isinstance(h, Line2D)]
    areas = [(h, lab) for h, lab in zip(handles, labels, strict=True) if not isinstance(h, Line2D)]
    ordered = lines + areas[::-1]
    ax.legend(
        [h for h, _ in ordered],
        [lab for _, lab in ordered],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        fontsize=9,
    )


def png_data_uri(png: bytes) -> str:
    """A PNG as a ``data:`` URI, so a page or Dagster's Markdown shows it with no file server."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return buffer.getvalue()


def _figure(height_in: float, ncols: int = 1, nrows: int = 1, **kwargs):
    fig = Figure(figsize=(WIDTH_IN, height_in), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def _date_axis(ax) -> None:
    """Weeks on the x axis: concise dates (``Mar``, ``2026``), so the labels never collide."""
    locator = AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def overlapping_tick_labels(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of tick labels (same axis) whose drawn boxes overlap, after a layout pass."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    pairs = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            boxes = [t.get_window_extent(renderer) for t in labels]
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    a, b = boxes[i], boxes[j]
                    if min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5 and (
                        min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5
                    ):
                        pairs.append((labels[i].get_text(), labels[j].get_text()))
    return pairs


def _category_labels(fig: Figure, ax) -> None:
    """Slant the x axis's category labels (channel names) as far as needed for them not to
    collide: level, then 30, 45 or 90 degrees."""
    for angle in (30, 45, 90):
        if not overlapping_tick_labels(fig):
            return
        for tick in ax.get_xticklabels():
            tick.set_rotation(angle)
            tick.set_horizontalalignment("right" if angle < 90 else "center")
            tick.set_rotation_mode("anchor" if angle < 90 else "default")


def _drawn(build):
    """A plot function that returns PNG bytes; ``function.figure(...)`` returns the matplotlib
    ``Figure`` instead (for tests that inspect what was drawn)."""

    @functools.wraps(build)
    def png(*args, **kwargs) -> bytes:
        return _png(build(*args, **kwargs))

    png.figure = build
    return png


@_drawn
def spend_and_revenue(
    spend: pd.DataFrame, revenue: pd.Series, colors: Mapping[str, str], currency: str
) -> Figure:
    """Stacked weekly spend by channel (area) and weekly net revenue (line), national.

    ``spend``: index week_start, one column per channel (money per week);
    ``revenue``: net revenue per week (money), any weeks.
    """
    fig, axes = _figure(4.6)
    ax = axes[0, 0]
    if not spend.empty:
        weeks = pd.to_datetime(spend.index)
        ax.stackplot(
            weeks,
            [spend[c].to_numpy(float) for c in spend.columns],
            labels=[f"spend: {c}" for c in spend.columns],
            colors=[colors[c] for c in spend.columns],
            alpha=0.85,
            linewidth=0,
        )
    if not revenue.empty:
        ax.plot(
            pd.to_datetime(revenue.index),
            revenue.to_numpy(float),
            color="black",
            linewidth=1.8,
            label="net revenue",
        )
    ax.set_title("Weekly media spend by channel (stacked) and net revenue, all geos")
    ax.set_xlabel("week (starting Monday)")
    _date_axis(ax)
    _money_axis(ax.yaxis, currency, "per week")
    ax.set_ylim(bottom=0)
    _style(ax)
    _legend_top_of_stack_first(ax)
    return fig


@_drawn
def contributions_over_time(
    contributions: pd.DataFrame,
    colors: Mapping[str, str],
    currency: str,
    actual_revenue: pd.Series | None = None,
) -> Figure:
    """Stacked area of each component's weekly contribution; negative parts stack below zero.

    ``contributions``: index week_start, one column per component (money per week). A
    component that is negative in some weeks (a price control, say) is drawn below the
    axis in those weeks, so the stacks above and below zero never overlap.
    """
    fig, axes = _figure(4.8)
    ax = axes[0, 0]
    weeks = pd.to_datetime(contributions.index)
    above = np.zeros(len(contributions))
    below = np.zeros(len(contributions))
    for component in contributions.columns:
        values = contributions[component].fillna(0.0).to_numpy(float)
        pos, neg = np.clip(values, 0, None), np.clip(values, None, 0)
        color = colors[component]
        ax.fill_between(
            weeks, above, above + pos, color=color, alpha=0.85, linewidth=0, label=component
        )
        if (neg < 0).any():
            ax.fill_between(weeks, below + neg, below, color=color, alpha=0.85, linewidth=0)
        above, below = above + pos, below + neg
    if actual_revenue is not None and not actual_revenue.empty:
        ax.plot(
            pd.to_datetime(actual_revenue.index),
            actual_revenue.to_numpy(float),
            color="black",
            linewidth=1.4,
            label="actual net revenue",
        )
    ax.axhline(0, color="#555555", linewidth=0.8)
    ax.set_title("Contribution to weekly net revenue by component (MMM posterior mean)")
    ax.set_xlabel("week (starting Monday)")
    _date_axis(ax)
    _money_axis(ax.yaxis, currency, "contribution per week")
    _style(ax)
    _legend_top_of_stack_first(ax)
    return fig


@_drawn
def actual_vs_predicted(
    actual: pd.Series, predicted: pd.Series, currency: str, r_squared: float
) -> Figure:
    """Left: actual and predicted weekly net revenue over time; right: one against the
    other with the line of perfect fit. ``actual``, ``predicted``: money per week, indexed
    by the same weeks; ``r_squared``: printed in the titles."""
    fig, axes = _figure(4.2, ncols=2, width_ratios=(2.2, 1))
    line, scatter = axes[0]
    weeks = pd.to_datetime(actual.index)
    line.plot(weeks, actual.to_numpy(float), color="black", linewidth=1.6, label="actual")
    line.plot(
        weeks, predicted.to_numpy(float), color="#08519c", linewidth=1.6, label="predicted (MMM)"
    )
    line.set_title(f"Weekly net revenue: actual vs predicted (R² = {fmt_ratio(r_squared, 3)})")
    line.set_xlabel("week (starting Monday)")
    _date_axis(line)
    _money_axis(line.yaxis, currency, "per week")
    _style(line)
    line.legend(loc="upper left", frameon=False, fontsize=9)
    a, p = actual.to_numpy(float), predicted.to_numpy(float)
    scatter.scatter(a, p, s=18, color="#08519c", alpha=0.8)
    finite = np.concatenate([a[np.isfinite(a)], p[np.isfinite(p)]])
    if finite.size:
        low, high = float(finite.min()), float(finite.max())
        scatter.plot([low, high], [low, high], color="#888888", linestyle="--", linewidth=1)
    _money_axis(scatter.xaxis, currency, "actual")
    _money_axis(scatter.yaxis, currency, "predicted")
    scatter.set_title("one dot per week; dashed: perfect fit")
    _style(scatter)
    _thin_ticks(scatter.xaxis)
    return fig


def _thin_ticks(axis, most: int = 5) -> None:
    """At most ``most`` ticks on a narrow axis, so its money labels stay apart."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(most))


@_drawn
def spend_vs_effect_share(shares: pd.DataFrame, colors: Mapping[str, str]) -> Figure:
    """Per channel, its share of media spend (grey) beside its share of the media effect
    (the MMM's contribution, channel colour). ``shares``: index channel, columns
    ``spend_share`` and ``effect_share`` (fractions)."""
    rows = shares.sort_values("effect_share")
    fig, axes = _figure(max(2.4, 0.5 * len(rows) + 1.4))
    ax = axes[0, 0]
    y = np.arange(len(rows))
    channels = [str(c) for c in rows.index]
    ax.barh(y + 0.2, 100 * rows["spend_share"].to_numpy(float), height=0.38,
            color="#bdbdbd", label="share of spend")  # fmt: skip
    ax.barh(y - 0.2, 100 * rows["effect_share"].to_numpy(float), height=0.38,
            color=[colors.get(c, "#555555") for c in channels], label="share of effect (MMM)")  # fmt: skip
    ax.set_yticks(y, channels)
    for tick, channel in zip(ax.get_yticklabels(), channels, strict=True):
        tick.set_color(colors.get(channel, "#000000"))
    ax.set_xlabel("% of all channels (spend; contribution)")
    ax.set_title("Share of spend (grey, upper bar) vs share of effect (colour)")
    ax.set_xlim(left=0)
    ax.grid(True, axis="x", color="#e0e0e0", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles = [
        Patch(color="#bdbdbd", label="share of spend"),
        Patch(color="#555555", label="share of effect (MMM; channel colour)"),
    ]
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9
    )
    return fig


@_drawn
def roas_with_hdi(summary: pd.DataFrame, colors: Mapping[str, str], currency: str) -> Figure:
    """ROAS per channel with its 94 % HDI as an error bar, and marginal ROAS as a diamond
    with its 94 % HDI as a dashed line below it (when ``mroas_hdi_low/high`` are given).

    ``summary``: one row per channel with ``roas, roas_hdi_low, roas_hdi_high, mroas``,
    optional ``mroas_hdi_low, mroas_hdi_high``.
    """
    rows = summary.sort_values("roas").reset_index(drop=True)
    fig, axes = _figure(max(2.4, 0.55 * len(rows) + 1.4))
    ax = axes[0, 0]
    y = np.arange(len(rows))
    for i, row in rows.iterrows():
        color = colors[str(row["channel"])]
        low = max(0.0, float(row["roas"]) - float(row["roas_hdi_low"]))
        high = max(0.0, float(row["roas_hdi_high"]) - float(row["roas"]))
        ax.errorbar(
            float(row["roas"]),
            i,
            xerr=[[low], [high]],
            fmt="o",
            color=color,
            markersize=8,
            capsize=5,
            elinewidth=2.2,
        )
        mroas_low = float(row.get("mroas_hdi_low", np.nan))
        mroas_high = float(row.get("mroas_hdi_high", np.nan))
        if np.isfinite(mroas_low) and np.isfinite(mroas_high):
            ax.plot([mroas_low, mroas_high], [i - 0.22, i - 0.22], color=color, linewidth=1.4,
                    linestyle=(0, (3, 2)))  # fmt: skip
        if np.isfinite(float(row["mroas"])):
            ax.plot(
                float(row["mroas"]),
                i,
                marker="D",
                markersize=7,
                markerfacecolor="white",
                markeredgecolor=color,
                markeredgewidth=2,
                linestyle="none",
            )
    ax.axvline(1.0, color="#888888", linestyle="--", linewidth=1)
    ax.set_yticks(y, rows["channel"].astype(str))
    for tick, channel in zip(ax.get_yticklabels(), rows["channel"].astype(str), strict=True):
        tick.set_color(colors[channel])
    ax.set_xlabel(f"{currency} of net revenue per {currency} of spend")
    ax.set_title("Return on ad spend per channel (MMM), 94 % highest-density interval")
    ax.set_xlim(left=0)
    ax.grid(True, axis="x", color="#e0e0e0", linewidth=0.8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles = [
        Line2D(
            [], [], color="#444444", marker="o", linewidth=2.2, label="ROAS (mean) with 94 % HDI"
        ),
        Line2D(
            [],
            [],
            color="#444444",
            marker="D",
            markerfacecolor="white",
            linestyle="none",
            label="marginal ROAS (next unit of spend)",
        ),
        Line2D([], [], color="#444444", linestyle=(0, (3, 2)), label="marginal ROAS 94 % HDI"),
        Line2D([], [], color="#888888", linestyle="--", label="ROAS = 1 (revenue = spend)"),
    ]
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9
    )
    return fig


@_drawn
def response_curves(
    curves: pd.DataFrame,
    marks: pd.DataFrame,
    colors: Mapping[str, str],
    currency: str,
) -> Figure:
    """One panel per channel: weekly response vs weekly spend with its 94 % HDI band.

    ``curves``: ``channel, spend, response, response_hdi_low, response_hdi_high`` (money
    per week); ``marks``: index channel, columns ``current_weekly_spend`` and
    ``recommended_weekly_spend`` (money per week; NaN when there is no budget plan).
    """
    channels = sorted(curves["channel"].astype(str).unique())
    ncols = min(3, len(channels))
    nrows = math.ceil(len(channels) / ncols)
    fig, axes = _figure(3.0 * nrows + 0.6, ncols=ncols, nrows=nrows)
    for k, ax in enumerate(axes.flat):
        if k >= len(channels):
            ax.set_visible(False)
            continue
        channel = channels[k]
        c = curves[curves["channel"].astype(str) == channel].sort_values("spend")
        x = c["spend"].to_numpy(float)
        color = colors[channel]
        ax.fill_between(
            x,
            c["response_hdi_low"].to_numpy(float),
            c["response_hdi_high"].to_numpy(float),
            color=color,
            alpha=0.22,
            linewidth=0,
            label="94 % HDI",
        )
        ax.plot(x, c["response"].to_numpy(float), color=color, linewidth=2, label="mean response")
        for column, style, marker, label in (
            ("current_weekly_spend", "--", "o", "current"),
            ("recommended_weekly_spend", "-", "D", "recommended"),
        ):
            value = marks[column].get(channel, np.nan) if column in marks else np.nan
            if not np.isfinite(value):
                continue
            ax.axvline(
                value, color="#222222", linestyle=style, linewidth=1.2, label=f"{label} spend"
            )
            if x.min() <= value <= x.max():
                ax.plot(
                    value,
                    np.interp(value, x, c["response"].to_numpy(float)),
                    marker=marker,
                    color="#222222",
                    markerfacecolor="white" if marker == "o" else "#222222",
                    markersize=7,
                    linestyle="none",
                )
        ax.set_title(channel, color=color, fontweight="bold")
        _money_axis(ax.xaxis, currency, "spend per week")
        _money_axis(ax.yaxis, currency, "contribution per week")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        _style(ax)
    handles = [
        Patch(color="#999999", alpha=0.3, label="94 % HDI"),
        Line2D([], [], color="#555555", linewidth=2, label="mean response (channel colour)"),
        Line2D(
            [],
            [],
            color="#222222",
            linestyle="--",
            marker="o",
            markerfacecolor="white",
            label="current weekly spend",
        ),
        Line2D(
            [], [], color="#222222", linestyle="-", marker="D", label="recommended weekly spend"
        ),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False, fontsize=10)
    fig.suptitle("Response curves: steady-state weekly contribution vs weekly spend (MMM)")
    return fig


SOURCE_COLUMNS = {
    "MTA ROAS": "mta_roas",
    "MMM ROAS": "mmm_roas",
    "MMM mROAS": "mmm_mroas",
    "experiment iROAS": "experiment_iroas",
}
"""Each source of the "same business, two stories" chart -> its ``measurement.triangulation`` column."""


def sources_by_channel(triangulation: pd.DataFrame) -> pd.DataFrame:
    """``measurement.triangulation`` rows -> what :func:`sources_side_by_side` draws: index
    channel (sorted), one column per source of :data:`SOURCE_COLUMNS` the table has, plus
    ``target_roas`` when present. The report and the Dagster asset both draw from this."""
    table = triangulation.sort_values("channel").reset_index(drop=True)
    frame = pd.DataFrame(
        {
            label: pd.to_numeric(table[column], errors="coerce").to_numpy(float)
            for label, column in SOURCE_COLUMNS.items()
            if column in table
        },
        index=pd.Index(table["channel"].astype(str), name="channel"),
    )
    if "target_roas" in table:
        frame["target_roas"] = pd.to_numeric(table["target_roas"], errors="coerce").to_numpy(float)
    return frame


@_drawn
def sources_side_by_side(table: pd.DataFrame, colors: Mapping[str, str], currency: str) -> Figure:
    """Grouped bars per channel: MTA ROAS, MMM ROAS, MMM mROAS and experiment iROAS.

    ``table``: index channel, one column per key of ``SOURCE_COLORS`` (NaN = no estimate,
    written as ``n/a`` at the bar's place); ``target_roas`` column optional (dotted line).
    Build it from ``measurement.triangulation`` with :func:`sources_by_channel`; a table
    with none of those columns (the raw warehouse table, say) is a ``ValueError``, never
    an empty chart.
    """
    sources = [s for s in SOURCE_COLORS if s in table.columns]
    if not sources:
        raise ValueError(
            "sources_side_by_side needs one column per source ("
            + ", ".join(SOURCE_COLORS)
            + f"), got {list(table.columns)}: build it with sources_by_channel()"
        )
    channels = [str(c) for c in table.index]
    fig, axes = _figure(4.6)
    ax = axes[0, 0]
    width = 0.8 / max(1, len(sources))
    x = np.arange(len(channels))
    for j, source in enumerate(sources):
        values = table[source].to_numpy(float)
        offsets = x - 0.4 + width * (j + 0.5)
        ax.bar(
            offsets,
            np.nan_to_num(values),
            width=width * 0.92,
            color=SOURCE_COLORS[source],
            label=source,
        )
        for xo, v in zip(offsets, values, strict=True):
            if not np.isfinite(v):
                ax.text(xo, 0, "n/a", ha="center", va="bottom", fontsize=8, color="#555555")
    ax.axhline(1.0, color="#888888", linestyle="--", linewidth=1, label="ROAS = 1")
    if "target_roas" in table.columns:
        targets = table["target_roas"].dropna().unique()
        if len(targets) == 1 and np.isfinite(targets[0]):
            ax.axhline(
                float(targets[0]),
                color="#31a354",
                linestyle=":",
                linewidth=1.5,
                label=f"target ROAS = {float(targets[0]):.2f}",
            )
    ax.set_xticks(x, channels)
    for tick, channel in zip(ax.get_xticklabels(), channels, strict=True):
        tick.set_color(colors.get(channel, "#000000"))
        tick.set_fontweight("bold")
    ax.set_ylabel(f"{currency} of revenue per {currency} of spend")
    ax.set_title("Same business, two stories: ROAS per channel by measurement source")
    ax.set_ylim(bottom=0)
    _style(ax)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)
    _category_labels(fig, ax)
    return fig


@_drawn
def budget_plan(
    plan: pd.DataFrame, colors: Mapping[str, str], currency: str, horizon_weeks: int
) -> Figure:
    """Left: current vs recommended spend per channel; right: expected contribution change.

    ``plan``: one row per channel with ``current_spend, recommended_spend`` (money over the
    plan horizon), ``expected_contribution_change`` and optional ``..._hdi_low/high``.
    """
    rows = plan.sort_values("channel").reset_index(drop=True)
    fig, axes = _figure(max(2.6, 0.5 * len(rows) + 1.5), ncols=2, sharey=True)
    left, right = axes[0]
    y = np.arange(len(rows))
    channels = rows["channel"].astype(str)
    left.barh(
        y - 0.2,
        rows["current_spend"].to_numpy(float),
        height=0.38,
        color="#bdbdbd",
        label="current",
    )
    left.barh(
        y + 0.2,
        rows["recommended_spend"].to_numpy(float),
        height=0.38,
        color=[colors[c] for c in channels],
        label="recommended",
    )
    left.set_yticks(y, channels)
    left.invert_yaxis()
    _money_axis(left.xaxis, currency, f"spend over the next {horizon_weeks} weeks")
    left.set_title("Spend: current (grey, upper bar) vs recommended (colour)")
    change = rows["expected_contribution_change"].to_numpy(float)
    has_hdi = {
        "expected_contribution_change_hdi_low",
        "expected_contribution_change_hdi_high",
    } <= set(rows)
    for i, channel in enumerate(channels):
        xerr = None
        if has_hdi:
            low = float(rows.at[i, "expected_contribution_change_hdi_low"])
            high = float(rows.at[i, "expected_contribution_change_hdi_high"])
            if np.isfinite(low) and np.isfinite(high):
                xerr = [[max(0.0, change[i] - low)], [max(0.0, high - change[i])]]
        right.errorbar(
            change[i],
            i,
            xerr=xerr,
            fmt="o",
            color=colors[channel],
            capsize=5,
            markersize=8,
            elinewidth=2,
        )
    right.axvline(0, color="#555555", linewidth=1)
    _money_axis(right.xaxis, currency, f"contribution change over {horizon_weeks} weeks")
    right.set_title("Expected contribution change (mean, 94 % HDI)")
    for ax in (left, right):
        ax.grid(True, axis="x", color="#e0e0e0", linewidth=0.8)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    for tick, channel in zip(left.get_yticklabels(), channels, strict=True):
        tick.set_color(colors[channel])
    return fig
