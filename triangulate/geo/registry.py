"""Geo experiment specs: validating one registry entry or one YAML file of
``landing/experiments/`` (docs/contracts.md §3).

One YAML file holds one experiment (a mapping) or several (a list of mappings)::

    id: exp-2026-tv-holdout
    channel: tv
    kind: holdout            # holdout (spend removed in treatment geos) or heavy_up
    treatment_geos: [G01, G07, G12]
    control_geos: null       # optional; null or absent = every other geo is a donor
    start: 2026-03-02        # first day of the test (inclusive)
    end: 2026-03-29          # last day of the test (inclusive)
    metric: net_revenue
    spend_change: -120000    # optional: total spend difference over the test, see below

``spend_change`` sign convention: spend in the treatment geos during the test minus the
spend they would have had without the test, summed over geos and days. A holdout
removes spend, so it is negative; with a negative revenue lift that makes the iROAS of a
channel that works positive.

This module parses and validates; it does not decide which entry of the registry is
current. An id registered again in a later file restates the experiment: dbt's
``staging.stg_experiments__registry`` keeps the latest file's entry per id (the one owner of
that rule) and the experiments asset builds its specs from that model's rows with
:meth:`ExperimentSpec.from_dict`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

KINDS = ("holdout", "heavy_up")
REQUIRED_FIELDS = ("id", "channel", "kind", "treatment_geos", "start", "end", "metric")
OPTIONAL_FIELDS = ("control_geos", "spend_change", "description")


@dataclass(frozen=True)
class ExperimentSpec:
    """One registered geo experiment, validated (see the module docstring for fields)."""

    id: str
    channel: str
    kind: str
    treatment_geos: tuple[str, ...]
    control_geos: tuple[str, ...] | None
    start: dt.date
    end: dt.date
    metric: str
    spend_change: float | None = None
    description: str | None = None
    source: str | None = field(default=None, compare=False)
    """Where the entry was registered (a landing file and entry), for messages only."""

    @classmethod
    def from_dict(cls, raw: Mapping, *, source: str = "experiment spec") -> ExperimentSpec:
        """Validate a mapping; every error names ``source`` and the field."""
        if not isinstance(raw, Mapping):
            raise ValueError(f"{source}: an experiment must be a mapping, got {type(raw).__name__}")
        unknown = sorted(set(map(str, raw)) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
        if unknown:
            raise ValueError(
                f"{source}: unknown field(s) {', '.join(unknown)}; known fields: "
                f"{', '.join(REQUIRED_FIELDS + OPTIONAL_FIELDS)}"
            )
        missing = [f for f in REQUIRED_FIELDS if raw.get(f) in (None, "")]
        if missing:
            raise ValueError(f"{source}: missing required field(s) {', '.join(missing)}")
        kind = str(raw["kind"])
        if kind not in KINDS:
            raise ValueError(f"{source}: field 'kind' must be holdout or heavy_up, got {kind!r}")
        treatment = _geo_list(raw["treatment_geos"], source, "treatment_geos")
        control = raw.get("control_geos")
        control_geos = None if control is None else _geo_list(control, source, "control_geos")
        if control_geos is not None:
            overlap = sorted(set(treatment) & set(control_geos))
            if overlap:
                raise ValueError(
                    f"{source}: field 'control_geos' repeats treatment geo(s) {', '.join(overlap)}"
                )
        start = _as_date(raw["start"], source, "start")
        end = _as_date(raw["end"], source, "end")
        if end < start:
            raise ValueError(f"{source}: field 'end' ({end}) is before 'start' ({start})")
        spend_change = raw.get("spend_change")
        if spend_change is not None:
            try:
                spend_change = float(spend_change)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{source}: field 'spend_change' must be a number, got {spend_change!r}"
                ) from None
        description = raw.get("description")
        return cls(
            id=str(raw["id"]),
            channel=str(raw["channel"]),
            kind=kind,
            treatment_geos=treatment,
            control_geos=control_geos,
            start=start,
            end=end,
            metric=str(raw["metric"]),
            spend_change=spend_change,
            description=None if description is None else str(description),
            source=source,
        )


def _geo_list(value: object, source: str, field: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [g.strip() for g in value.split(",") if g.strip()]
    if not isinstance(value, list | tuple) or not value:
        raise ValueError(f"{source}: field {field!r} must be a non-empty list of geos")
    geos = tuple(str(g) for g in value)
    dupes = sorted({g for g in geos if geos.count(g) > 1})
    if dupes:
        raise ValueError(f"{source}: field {field!r} lists geo(s) twice: {', '.join(dupes)}")
    return geos


def _as_date(value: object, source: str, field: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(
            f"{source}: field {field!r} must be a date (YYYY-MM-DD), got {value!r}"
        ) from None


def parse_experiment_file(path: str | Path) -> list[ExperimentSpec]:
    """Parse and validate one registry YAML file (a mapping or a list of mappings), its
    entries in file order; an id repeated in it is kept as written (see the module
    docstring: which entry is current is dbt's rule)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        raise ValueError(f"{path}: empty file; expected an experiment mapping")
    items = raw if isinstance(raw, list) else [raw]
    return [
        ExperimentSpec.from_dict(
            item, source=f"{path}" + (f" item {i + 1}" if len(items) > 1 else "")
        )
        for i, item in enumerate(items)
    ]
