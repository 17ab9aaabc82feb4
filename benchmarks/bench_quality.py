"""Data-quality gate benchmark: how long a GX gate takes on a warehouse-sized DataFrame.

Run: ``.venv/bin/python benchmarks/bench_quality.py`` (writes benchmarks/results/quality.json).

Measured in one fresh process, in the order a Dagster check process meets them:
1. importing Great Expectations (paid once per process);
2. the first ``validate_table`` call: builds the ephemeral context with every suite,
   datasource, validation definition and checkpoint, then validates;
3. warm calls on a 20,160-row ``marts.fct_weekly_channel_spend`` (40 geos x 7 channels x
   72 weeks) and a 20,000-row ``marts.fct_orders``, with and without Data Docs: median of 5.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd

from benchmarks._common import write_result
from triangulate.quality import validate_table

TODAY = date(2026, 11, 23)


def weekly_channel_spend() -> pd.DataFrame:
    weeks = pd.date_range("2025-01-06", periods=72, freq="W-MON").astype("datetime64[us]")
    geos = [str(500 + g) for g in range(40)]
    channels = [
        "meta",
        "google_search_brand",
        "google_search_nonbrand",
        "tiktok",
        "youtube",
        "tv",
        "podcast",
    ]
    grid = pd.MultiIndex.from_product(
        [weeks, geos, channels], names=["week_start", "geo", "channel"]
    )
    frame = grid.to_frame(index=False)
    frame["geo"], frame["channel"] = frame.geo.astype("str"), frame.channel.astype("str")
    frame["spend"] = np.random.default_rng(0).gamma(4.0, 50.0, len(frame)).round(2)
    frame["impressions"] = (frame.spend * 80).astype("int64")
    frame["clicks"] = (frame.spend * 0.9).astype("int64")
    return frame


def orders(n: int = 20_000) -> pd.DataFrame:
    gross = np.random.default_rng(1).lognormal(4.5, 0.4, n).round(2)
    refunded = np.where(np.arange(n) % 20 == 0, gross, 0.0)
    return pd.DataFrame({
        "order_id": pd.Series([f"ord_{i:06d}" for i in range(n)], dtype="str"),
        "ordered_at": pd.Series(pd.date_range("2024-01-01", periods=n, freq="47min", tz="UTC")).astype("datetime64[us, UTC]"),
        "customer_key": pd.Series([f"c{i % 5000}" for i in range(n)], dtype="str"),
        "geo": pd.Series([str(500 + i % 40) for i in range(n)], dtype="str"),
        "gross_revenue": gross, "refunded": refunded, "net_revenue": (gross - refunded).round(2),
        "currency_original": pd.Series([("USD", "EUR", "GBP", "CAD")[i % 4] for i in range(n)], dtype="str"),
    })  # fmt: skip


def median_seconds(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def main() -> None:
    spend, order_frame = weekly_channel_spend(), orders()
    docs = Path(tempfile.mkdtemp(prefix="bench_quality_docs_"))

    started = time.perf_counter()
    import great_expectations  # noqa: F401

    import_s = time.perf_counter() - started
    started = time.perf_counter()
    first = validate_table("marts.fct_weekly_channel_spend", spend, today=TODAY, data_docs_dir=docs)
    first_s = time.perf_counter() - started
    assert first.success, first.message()

    # what the asset checks pass for an FX reference of CAD, EUR, GBP (quality.known_currencies)
    fx = {"known_currencies": ["CAD", "EUR", "GBP", "USD"]}

    def gate(table: str, frame: pd.DataFrame, data_docs: bool) -> None:
        result = validate_table(
            table, frame, today=TODAY, data_docs_dir=docs, data_docs=data_docs, parameters=fx
        )
        assert result.success, result.message()

    results = {
        "gx_import_s": round(import_s, 3),
        "first_call_s (context + all suites + validate + docs)": round(first_s, 3),
        "rows": {
            "marts.fct_weekly_channel_spend": len(spend),
            "marts.fct_orders": len(order_frame),
        },
    }
    for label, data_docs in (("with_data_docs", True), ("without_data_docs", False)):
        # the context without docs is built on its first call: warm it before timing
        gate("marts.fct_orders", order_frame, data_docs)
        results[f"fct_weekly_channel_spend_{label}_s"] = median_seconds(
            lambda d=data_docs: gate("marts.fct_weekly_channel_spend", spend, d)
        )
        results[f"fct_orders_{label}_s"] = median_seconds(
            lambda d=data_docs: gate("marts.fct_orders", order_frame, d)
        )
    write_result(
        "quality", {"results": results, "command": ".venv/bin/python benchmarks/bench_quality.py"}
    )


if __name__ == "__main__":
    main()
