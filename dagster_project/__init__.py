"""Triangulate's orchestration: Dagster definitions, assets, jobs, schedules, sensor and the
runner. Everything it computes comes from the ``triangulate`` library."""
