"""Writes the bring-your-own-data MMM fixtures of this folder (see README.md).

Run from the repository root: ``.venv/bin/python tests/data/mmm_byod/make_fixtures.py``.
The worlds are ``triangulate.mmm.synthetic.synthetic_weekly`` with a few columns renamed
or added; the files are small (tens of rows) and deterministic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from triangulate.mmm.synthetic import synthetic_weekly

HERE = Path(__file__).resolve().parent
EVENTS = {"black_friday": 1.25, "summer_sale": 1.1}


def weekly_events() -> pd.DataFrame:
    """National, 60 weeks: revenue, two channels, a price index and a text ``events`` column."""
    weekly, _ = synthetic_weekly(n_weeks=60, n_channels=2, seed=11, l_max=2, noise=0.02)
    rng = np.random.default_rng(11)
    events = np.full(len(weekly), "none", dtype=object)
    events[[9, 10, 47, 48]] = "black_friday"
    events[[27, 28, 29]] = "summer_sale"
    lift = np.array([EVENTS.get(e, 1.0) for e in events])
    price = 1 + 0.05 * np.sin(np.arange(len(weekly)) / 5) + rng.normal(0, 0.005, len(weekly))
    return pd.DataFrame(
        {
            "week": weekly["week_start"].dt.date,
            "revenue": (weekly["net_revenue"] * lift / price).round(2),
            "tv": weekly["spend_ch1"].round(2),
            "search": weekly["spend_ch2"].round(2),
            "price_index": price.round(4),
            "events": events,
        }
    )


def weekly_conversions() -> pd.DataFrame:
    """National, 52 weeks: a count KPI (``conversions``, revenue / 80 rounded) and two channels."""
    weekly, _ = synthetic_weekly(n_weeks=52, n_channels=2, seed=12, l_max=2, noise=0.02)
    return pd.DataFrame(
        {
            "week": weekly["week_start"].dt.date,
            "conversions": (weekly["net_revenue"] / 80).round().astype(int),
            "meta": weekly["spend_ch1"].round(2),
            "google": weekly["spend_ch2"].round(2),
        }
    )


def geo_weekly() -> pd.DataFrame:
    """Long, 3 regions x 40 weeks: one row per week x region."""
    weekly, _ = synthetic_weekly(n_weeks=40, n_channels=2, n_geos=3, seed=13, l_max=2, noise=0.02)
    return pd.DataFrame(
        {
            "week": weekly["week_start"].dt.date,
            "region": weekly["geo"].str.replace("G", "region_"),
            "revenue": weekly["net_revenue"].round(2),
            "spend_tv": weekly["spend_ch1"].round(2),
            "spend_search": weekly["spend_ch2"].round(2),
        }
    )


if __name__ == "__main__":
    weekly_events().to_csv(HERE / "weekly_events.csv", index=False)
    weekly_conversions().to_csv(HERE / "weekly_conversions.csv", index=False)
    geo_weekly().to_csv(HERE / "geo_weekly.csv", index=False)
