"""Interval coverage: over many simulated experiments with a known lift, 90 % intervals cover ~90 %.

See :func:`triangulate.geo.simulation.interval_coverage` for the simulation. The
figure is printed (``pytest -s``) and recorded by ``benchmarks/bench_geo.py``.
"""

from __future__ import annotations

from triangulate.geo.simulation import interval_coverage


def test_ninety_percent_intervals_cover_about_ninety_percent():
    coverage = interval_coverage(150, alpha=0.1)
    print(f"\n90% interval coverage over 150 simulated experiments: {coverage}")
    assert 0.80 <= coverage["conformal"] <= 0.98
    assert 0.80 <= coverage["placebo_in_space"] <= 0.98


def test_wider_level_covers_more():
    narrow = interval_coverage(40, alpha=0.5, n_placebos=0, seed=3)["conformal"]
    wide = interval_coverage(40, alpha=0.1, n_placebos=0, seed=3)["conformal"]
    assert narrow < wide
    assert 0.3 <= narrow <= 0.7  # a 50 % interval covers about half the time
