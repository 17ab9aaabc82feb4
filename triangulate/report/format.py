"""How numbers read in the report: one formatter per kind of quantity.

Money is in the currency the marts hold (``marts.reporting_currency``, see
:func:`triangulate.report.build.report_currency`) and the currency is named in the column
header or axis label, not repeated in every cell.
A missing value (None, NaN, infinite) prints as ``n/a``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

MISSING = "n/a"


def _number(x: object) -> float | None:
    try:
        value = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _no_negative_zero(text: str) -> str:
    """``-0``, ``-0.0`` -> ``0``, ``0.0``: a rounding artefact, not a loss."""
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def fmt_money(x: object) -> str:
    """Whole currency units with thousands separators: ``1234567.8`` -> ``1,234,568``."""
    value = _number(x)
    return MISSING if value is None else _no_negative_zero(f"{value:,.0f}")


def fmt_compact(x: object, digits: int = 3) -> str:
    """Short form for cards and axis ticks: ``1234567`` -> ``1.23M``, ``45600`` -> ``45.6K``."""
    value = _number(x)
    if value is None:
        return MISSING
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= size:
            return f"{value / size:.{digits}g}{suffix}"
    return f"{value:.{digits}g}"


def fmt_ratio(x: object, decimals: int = 2) -> str:
    """A ratio such as ROAS (revenue per unit of spend): ``2.345`` -> ``2.35``."""
    value = _number(x)
    return MISSING if value is None else _no_negative_zero(f"{value:,.{decimals}f}")


def fmt_fraction_pct(x: object, decimals: int = 1) -> str:
    """A fraction as a percentage: ``0.123`` -> ``12.3 %``."""
    value = _number(x)
    return MISSING if value is None else _no_negative_zero(f"{100 * value:.{decimals}f}") + " %"


def fmt_pct(x: object, decimals: int = 1) -> str:
    """A value already in percent: ``12.3`` -> ``12.3 %``."""
    value = _number(x)
    return MISSING if value is None else _no_negative_zero(f"{value:.{decimals}f}") + " %"


def fmt_int(x: object) -> str:
    value = _number(x)
    return MISSING if value is None else f"{value:,.0f}"


def fmt_p_value(x: object) -> str:
    value = _number(x)
    if value is None:
        return MISSING
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def fmt_interval(low: object, high: object, fmt=fmt_ratio) -> str:
    """``[low, high]`` with the value's own formatter."""
    if _number(low) is None and _number(high) is None:
        return MISSING
    return f"[{fmt(low)}, {fmt(high)}]"


def fmt_date(x: object) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return MISSING
    try:
        return pd.Timestamp(x).strftime("%Y-%m-%d")
    except (TypeError, ValueError):
        return str(x)


def fmt_datetime(x: object) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return MISSING
    try:
        ts = pd.Timestamp(x)
    except (TypeError, ValueError):
        return str(x)
    if pd.isna(ts):
        return MISSING
    if ts.tzinfo is not None:
        return ts.tz_convert("UTC").strftime("%Y-%m-%d %H:%M UTC")
    return ts.strftime("%Y-%m-%d %H:%M")


METADATA_MISSING = "—"
"""How a missing value reads in a Markdown metadata table (the Dagster UI)."""


def _metadata_cell(value: object, formatter) -> str:
    if isinstance(value, str):
        return value.replace("|", "\\|").replace("\n", " ") or METADATA_MISSING
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return METADATA_MISSING
    if formatter is not None:
        text = formatter(value)
        return METADATA_MISSING if text == MISSING else text.replace("|", "\\|")
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        number = _number(value)
        if number is None:
            return METADATA_MISSING
        whole = isinstance(value, numbers.Integral) or (number.is_integer() and abs(number) >= 1000)
        return _no_negative_zero(f"{number:,.0f}" if whole else f"{number:,.2f}")
    return str(value).replace("|", "\\|")


def markdown_table(
    frame: pd.DataFrame,
    first: tuple[str, ...] = ("channel", "decision", "confidence"),
    formats: dict | None = None,
) -> str:
    """A frame as a Markdown table for Dagster asset metadata, readable at any width.

    The columns of ``first`` the frame has lead (the UI cuts a wide table on the right, so
    what a person acts on comes first), then the rest in order. Numbers never print in
    scientific notation: thousands separators and two decimals (whole numbers from 1,000
    without decimals), or the column's formatter from ``formats`` (``{"confidence":
    fmt_fraction_pct}``); a missing value (None, NaN, NaT, infinite, empty text) is
    :data:`METADATA_MISSING`. Numeric columns are right-aligned.
    """
    formats = formats or {}
    frame = frame.reset_index(drop=True)
    columns = [c for c in first if c in frame] + [c for c in frame if c not in first]
    numeric = {
        c: pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        for c in columns
    }
    lines = [
        "| " + " | ".join(str(c) for c in columns) + " |",
        "|" + "|".join("---:" if numeric[c] else ":---" for c in columns) + "|",
    ]
    for _, row in frame[columns].iterrows():
        cells = [_metadata_cell(row[c], formats.get(c)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
