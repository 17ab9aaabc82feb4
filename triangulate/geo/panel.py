"""Geo panels: the long ``date, geo, value`` table every geo estimator reads.

A *panel* is one metric (e.g. net revenue) per geo per period, daily or weekly. The
estimators work on a wide matrix (periods x geos), so this module owns the checks that
make that matrix trustworthy: one row per (date, geo), no gaps, numbers only, and a
regular period (1 day or 7 days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

PANEL_COLUMNS = ("date", "geo", "value")


@dataclass(frozen=True)
class WidePanel:
    """A complete, regular panel as a matrix.

    ``values[t, i]`` is the metric of geo ``geos[i]`` in the period starting on
    ``dates[t]``; ``period_days`` is 1 (daily) or 7 (weekly).
    """

    dates: np.ndarray  # datetime64[D], strictly increasing, evenly spaced
    geos: tuple[str, ...]
    values: np.ndarray  # float, shape (len(dates), len(geos))
    period_days: int

    def geo_index(self, geos: list[str] | tuple[str, ...], *, what: str) -> np.ndarray:
        """Column positions of ``geos``; a clear error names the geos the panel lacks."""
        position = {g: i for i, g in enumerate(self.geos)}
        missing = [g for g in geos if g not in position]
        if missing:
            raise ValueError(
                f"{what}: geo(s) {', '.join(map(str, missing))} not in the panel "
                f"(panel geos: {', '.join(self.geos[:12])}{' ...' if len(self.geos) > 12 else ''})"
            )
        return np.array([position[g] for g in geos], dtype=int)

    def period_index(self, day: date) -> int:
        """Index of the period that contains calendar day ``day``."""
        day64 = np.datetime64(day, "D")
        idx = int(np.searchsorted(self.dates, day64, side="right")) - 1
        if idx < 0 or day64 >= self.dates[-1] + np.timedelta64(self.period_days, "D"):
            raise ValueError(
                f"date {day} is outside the panel ({self.dates[0]} .. "
                f"{self.dates[-1] + np.timedelta64(self.period_days - 1, 'D')})"
            )
        return idx

    def window(self, start: date, end: date) -> tuple[int, int]:
        """Period indices ``[first, last]`` (inclusive) covering ``start .. end``."""
        if end < start:
            raise ValueError(f"test window ends ({end}) before it starts ({start})")
        return self.period_index(start), self.period_index(end)


def load_panel_csv(path: str | Path) -> pd.DataFrame:
    """Read a long panel CSV (``date, geo, value``); errors name the file and row."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"panel file {path} does not exist")
    frame = pd.read_csv(path, dtype={"geo": str})
    return validate_long_panel(frame, source=str(path))


def validate_long_panel(frame: pd.DataFrame, *, source: str = "panel") -> pd.DataFrame:
    """Check and normalise a long panel: columns ``date`` (day), ``geo`` (text), ``value`` (float).

    Row numbers in errors are 1-based data rows (a CSV's line number minus one).
    """
    missing = [c for c in PANEL_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{source}: missing column(s) {', '.join(missing)}; a panel needs "
            f"columns date, geo, value (got {', '.join(map(str, frame.columns))})"
        )
    out = pd.DataFrame(
        {
            "date": pd.to_datetime(frame["date"], errors="coerce"),
            "geo": frame["geo"].astype(str),
            "value": pd.to_numeric(frame["value"], errors="coerce"),
        }
    )
    for column, kind in (("date", "a date"), ("value", "a number")):
        bad = out[column].isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{source}: row {row + 1}: column {column!r} is not {kind} "
                f"(got {frame[column].iloc[row]!r})"
            )
    if (frame["geo"].isna()).any():
        row = int(np.flatnonzero(frame["geo"].isna().to_numpy())[0])
        raise ValueError(f"{source}: row {row + 1}: column 'geo' is empty")
    if not np.isfinite(out["value"].to_numpy()).all():
        row = int(np.flatnonzero(~np.isfinite(out["value"].to_numpy()))[0])
        raise ValueError(f"{source}: row {row + 1}: column 'value' is not finite")
    out["date"] = out["date"].dt.normalize()
    dup = out.duplicated(["date", "geo"]).to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise ValueError(
            f"{source}: row {row + 1}: duplicate (date, geo) = "
            f"({out['date'].iloc[row].date()}, {out['geo'].iloc[row]}); one row per geo per period"
        )
    return out


def to_wide(long_panel: pd.DataFrame, *, source: str = "panel") -> WidePanel:
    """Pivot a validated long panel into a :class:`WidePanel`; gaps are errors, not zeros.

    A missing (date, geo) cell is refused rather than filled, because a silent zero in a
    treated geo would read as a huge negative lift.
    """
    frame = validate_long_panel(long_panel, source=source)
    wide = frame.pivot(index="date", columns="geo", values="value").sort_index()
    if wide.isna().to_numpy().any():
        counts = wide.isna().sum()
        worst = counts[counts > 0].sort_values(ascending=False)
        geo = str(worst.index[0])
        first_gap = wide.index[wide[geo].isna().to_numpy()][0].date()
        raise ValueError(
            f"{source}: geo {geo} has no row for {int(worst.iloc[0])} period(s) (first: "
            f"{first_gap}); {len(worst)} geo(s) have gaps. Fill them upstream (0 only if truly zero)"
        )
    dates = wide.index.to_numpy().astype("datetime64[D]")
    if len(dates) < 2:
        raise ValueError(f"{source}: a panel needs at least 2 periods, got {len(dates)}")
    steps = np.diff(dates).astype(int)
    period_days = int(steps[0])
    if period_days not in (1, 7) or not (steps == period_days).all():
        bad = int(np.flatnonzero(steps != period_days)[0]) if (steps != period_days).any() else 0
        raise ValueError(
            f"{source}: dates must be consecutive days or consecutive weeks; found a step of "
            f"{int(steps[bad])} day(s) after {dates[bad]}"
        )
    geos = tuple(str(g) for g in wide.columns)
    return WidePanel(
        dates=dates, geos=geos, values=wide.to_numpy(dtype=float), period_days=period_days
    )
