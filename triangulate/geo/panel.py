"""Geo panels: the long ``date, geo, value`` table every geo estimator reads.

A *panel* is one metric (e.g. net revenue) per geo per period, daily or weekly. The
estimators work on a wide matrix (periods x geos), so this module owns the checks that
make that matrix trustworthy: one row per (date, geo), no gaps, numbers only, and a
regular period (1 day or 7 days).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

PANEL_COLUMNS = ("date", "geo", "value")
COLUMN_OPTIONS = {"date": "--date-column", "geo": "--geo-column", "value": "--value-column"}
"""The CLI option that maps a file's column onto each panel column."""


class UnknownGeoError(ValueError):
    """Geos a panel does not have; ``near`` maps each to the panel's closest names."""

    def __init__(self, what: str, missing: Sequence[str], near: Mapping[str, Sequence[str]]):
        self.what = what
        self.missing = tuple(missing)
        self.near = {g: tuple(near.get(g, ())) for g in self.missing}
        described = "; ".join(
            f"{g}: did you mean {' or '.join(self.near[g])}?"
            if self.near[g]
            else f"{g}: no near match"
            for g in self.missing
        )
        super().__init__(f"{what}: geo(s) {', '.join(self.missing)} not in the panel ({described})")

    def with_panel_geos(self, geos: Sequence[str]) -> UnknownGeoError:
        """The same error, listing the panel's geos when some wanted geo has no near match."""
        if all(self.near.values()):
            return self
        shown = ", ".join(map(str, geos[:12])) + (" ..." if len(geos) > 12 else "")
        error = UnknownGeoError(self.what, self.missing, self.near)
        error.args = (f"{self.args[0]}; panel geos: {shown}",)
        return error


def _geo_key(name: str) -> str:
    return " ".join(str(name).split()).casefold()


def match_geos(
    wanted: Sequence[str], known: Sequence[str], *, what: str = "geos"
) -> tuple[str, ...]:
    """``wanted`` geos spelt as in ``known``: exact first, else the one known geo equal to it
    ignoring case and repeated blanks (``Chicago`` -> ``chicago``). Geos with no match raise
    :class:`UnknownGeoError` naming their near matches (difflib, ignoring case)."""
    known = [str(g) for g in known]
    exact = set(known)
    folded: dict[str, list[str]] = {}
    for g in known:
        folded.setdefault(_geo_key(g), []).append(g)
    resolved, missing = [], []
    for g in map(str, wanted):
        if g in exact:
            resolved.append(g)
        elif len(folded.get(_geo_key(g), [])) == 1:
            resolved.append(folded[_geo_key(g)][0])
        else:
            missing.append(g)
    if missing:
        keys = list(folded)
        near = {
            g: [
                name
                for key in difflib.get_close_matches(_geo_key(g), keys, n=3, cutoff=0.6)
                for name in folded[key]
            ]
            for g in missing
        }
        raise UnknownGeoError(what, missing, near).with_panel_geos(known)
    return tuple(resolved)


METRIC_KINDS = ("money", "count")
"""Values of ``metric_kind`` in ``measurement.geo_experiment_results``: money (revenue,
iROAS) or a count (conversions, cost per incremental conversion)."""

MONEY_WORDS = ("revenue", "sales", "value", "gmv", "profit", "margin", "amount", "income", "aov")
"""A metric whose name holds one of these is money unless the caller says otherwise."""


@dataclass(frozen=True)
class MetricLabels:
    """How results on a metric are named: money (``incremental_revenue``, iROAS) or a count
    (``incremental_conversions``, cost per incremental conversion)."""

    metric: str
    money: bool

    @classmethod
    def of(cls, metric: str, kind: str = "auto") -> MetricLabels:
        """``kind`` ``money``, ``count`` or ``auto``: money when the name holds one of
        :data:`MONEY_WORDS` (``value``, ``net_revenue``), else a count (``conversions``, ``Y``)."""
        if kind not in ("auto", *METRIC_KINDS):
            raise ValueError(f"metric kind must be auto, money or count, got {kind!r}")
        if kind == "auto":
            money = any(word in metric.lower() for word in MONEY_WORDS)
        else:
            money = kind == "money"
        return cls(metric=metric, money=money)

    @staticmethod
    def is_money(metric_kind: object) -> bool:
        """Whether a result row's ``metric_kind`` is money. A missing kind (a row from
        before the column existed, when every result was money) counts as money."""
        return pd.isna(metric_kind) or str(metric_kind) != "count"

    @staticmethod
    def money_rows(metric_kind: pd.Series) -> pd.Series:
        """:meth:`is_money` of every row: the rows the readers that need iROAS (MMM and
        MTA calibration, triangulation) keep."""
        return metric_kind.map(MetricLabels.is_money).astype(bool)

    @property
    def kind(self) -> str:
        """``money`` or ``count``: ``metric_kind`` of ``measurement.geo_experiment_results``."""
        return "money" if self.money else "count"

    @property
    def unit(self) -> str:
        """One outcome, singular: ``conversion`` for ``conversions``."""
        name = self.metric.strip().replace(" ", "_")
        return name[:-1] if name.endswith("s") and len(name) > 1 else name

    @property
    def incremental(self) -> str:
        """The column of the total incremental metric."""
        return "incremental_revenue" if self.money else f"incremental_{self.metric}"

    @property
    def ratio(self) -> str:
        """The column of the efficiency ratio: ``iroas`` (metric / spend) for money,
        ``cost_per_incremental_<unit>`` (spend / metric) for a count."""
        return "iroas" if self.money else f"cost_per_incremental_{self.unit}"

    @property
    def ratio_label(self) -> str:
        return "iROAS" if self.money else f"cost per incremental {self.unit.replace('_', ' ')}"


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
        """Column positions of ``geos``, matched by :func:`match_geos` (case-insensitive);
        an :class:`UnknownGeoError` names the geos the panel lacks and their near matches."""
        position = {g: i for i, g in enumerate(self.geos)}
        return np.array([position[g] for g in self.resolve(geos, what=what)], dtype=int)

    def resolve(self, geos: Sequence[str], *, what: str) -> tuple[str, ...]:
        """``geos`` spelt as the panel spells them (see :func:`match_geos`)."""
        return match_geos(geos, self.geos, what=what)

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


def load_panel_csv(path: str | Path, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read a long panel CSV; errors name the file and row.

    ``columns`` maps panel columns to the file's (``{"geo": "location", "value": "Y"}``
    reads GeoLift's ``date, location, Y``); unmapped ones are read from ``date``, ``geo``,
    ``value``. Other columns of the file are ignored.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"panel file {path} does not exist")
    names = {c: (columns or {}).get(c) or c for c in PANEL_COLUMNS}
    header = pd.read_csv(path, nrows=0).columns
    missing = [c for c in PANEL_COLUMNS if names[c] not in header]
    if missing:
        raise ValueError(
            f"{path}: no column "
            + ", ".join(f"{names[c]!r} (map yours with {COLUMN_OPTIONS[c]})" for c in missing)
            + f"; the file has {', '.join(map(str, header))}"
        )
    frame = pd.read_csv(
        path, usecols=list(dict.fromkeys(names.values())), dtype={names["geo"]: str}
    )
    frame = pd.DataFrame({c: frame[names[c]] for c in PANEL_COLUMNS})
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
