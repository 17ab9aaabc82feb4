"""The MTA model registry: every attribution model, registered by the module that defines it.

A new model is one file: a module in ``triangulate/mta/`` (or anywhere, imported before
use) calls :func:`register` (or the :func:`touch_model` / :func:`path_model` decorators)
at import time. The engine (:mod:`triangulate.mta.engine`), the CLI (``triangulate mta
--list-models``) and the Dagster asset read the registry; nothing else lists model names.
The first read imports every module of the ``triangulate.mta`` package, so the built-in
models (:mod:`~triangulate.mta.heuristics`, :mod:`~triangulate.mta.markov`,
:mod:`~triangulate.mta.shapley`) are always there.

Two kinds of model:

* ``touch``: a weight per touch of a converting journey, summing to 1 per journey; a
  touch's credit is its weight x the journey's conversions (and revenue), so campaigns are
  exact. On aggregated paths the weight is ``path_weights(paths, options)`` (numpy, one
  float per touch of :class:`~triangulate.mta.paths.EncodedPaths`, 0-based positions); in
  the warehouse it is ``sql_weight``, a SQL expression over the columns ``position``
  (1 = first touch), ``path_length``, ``last_non_direct_position``, ``decay`` and
  ``decay_total`` of :func:`triangulate.mta.sql.heuristic_credit_sql`. A model with only
  one of the two runs only there.
* ``path``: credit per channel from the journeys' aggregated paths:
  ``credit(paths, context)`` returns ``group, channel, conversions, revenue`` (``group``
  indexes ``paths.groups``, the weeks in the warehouse); runs on aggregated paths and in
  the warehouse (on the aggregated paths of each week; campaigns split by the channel's
  linear credit). A model whose ``output`` is not ``channel_credit`` writes its own frame
  (e.g. ``ordered_shapley``) and runs in the warehouse only.

This module imports nothing heavy (the CLI reads it at ``--help`` time).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

TOUCH, PATH = "touch", "path"
PATHS, WAREHOUSE = "paths", "warehouse"
"""Where a model runs: on aggregated paths (``attribute_paths``, the CLI) or on the
warehouse's journeys (``attribute_from_warehouse``, the asset)."""
CHANNEL_CREDIT = "channel_credit"
"""The output of most models: rows of ``measurement.mta_channel_credit``."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ModelOptions:
    """Settings every model may read: the channel ``last_non_direct`` passes over and time
    decay's half-life in days."""

    direct_channel: str = "direct"
    half_life_days: float = 7.0


@dataclass
class ModelContext:
    """What a ``path`` model's ``credit`` gets besides the paths: the options and a memo
    shared by the models fitted on the same paths (``memo(key, compute)``), so e.g. the
    Markov orders share their collapsed steps and Shapley and ordered Shapley one pass."""

    options: ModelOptions = field(default_factory=ModelOptions)
    _memo: dict[str, Any] = field(default_factory=dict)

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


@dataclass(frozen=True)
class AttributionModel:
    """One registered model (see the module docstring for the two kinds)."""

    name: str
    kind: Literal["touch", "path"]
    description: str
    order: float = 1000.0
    """Position in listings and output tables (built-ins 10-220; new models default after)."""
    path_weights: Callable[..., Any] | None = None
    sql_weight: str | None = None
    credit: Callable[..., Any] | None = None
    output: str = CHANNEL_CREDIT
    needs: str = ""
    """What the model needs that aggregated paths lack (e.g. "touch times"), for the error."""
    module: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"model name {self.name!r} must be a lower-case identifier ([a-z][a-z0-9_]*)"
            )
        if self.kind == TOUCH:
            if self.credit is not None or (self.path_weights is None and not self.sql_weight):
                raise ValueError(
                    f"touch model {self.name!r}: give path_weights and/or sql_weight, not credit"
                )
            if self.output != CHANNEL_CREDIT:
                raise ValueError(f"touch model {self.name!r}: output must be {CHANNEL_CREDIT!r}")
        elif self.kind == PATH:
            if self.credit is None or self.path_weights is not None or self.sql_weight:
                raise ValueError(f"path model {self.name!r}: give credit, not weights")
        else:
            raise ValueError(f"model {self.name!r}: kind must be {TOUCH!r} or {PATH!r}")

    @property
    def runs_on(self) -> tuple[str, ...]:
        """``paths`` and/or ``warehouse``."""
        if self.kind == TOUCH:
            on_paths, on_warehouse = self.path_weights is not None, bool(self.sql_weight)
        else:
            on_paths, on_warehouse = self.output == CHANNEL_CREDIT, True
        return tuple(w for w, ok in ((PATHS, on_paths), (WAREHOUSE, on_warehouse)) if ok)


_MODELS: dict[str, AttributionModel] = {}
_LOCK = threading.Lock()
_DISCOVERY_LOCK = threading.RLock()
_DISCOVERED = False
_DISCOVERING = False


def register(model: AttributionModel) -> AttributionModel:
    """Add ``model``. Registering a name again from the same module replaces it (a reload);
    from another module it is an error."""
    if not model.module:
        function = model.credit or model.path_weights
        module = getattr(getattr(function, "func", function), "__module__", "") or ""
        model = replace(model, module=module)
    with _LOCK:
        existing = _MODELS.get(model.name)
        if existing is not None and existing.module != model.module:
            raise ValueError(
                f"MTA model {model.name!r} is already registered by {existing.module or '?'}"
            )
        _MODELS[model.name] = model
    return model


def unregister(name: str) -> None:
    """Remove a model (tests)."""
    with _LOCK:
        _MODELS.pop(name, None)


def touch_model(
    name: str,
    *,
    description: str,
    sql_weight: str | None = None,
    order: float = 1000.0,
    needs: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``fn(paths, options) -> weights`` as a touch model's
    ``path_weights`` (with its warehouse ``sql_weight``, when it has one)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        register(
            AttributionModel(
                name=name,
                kind=TOUCH,
                description=description,
                order=order,
                path_weights=fn,
                sql_weight=sql_weight,
                needs=needs,
                module=fn.__module__,
            )
        )
        return fn

    return decorate


def path_model(
    name: str, *, description: str, order: float = 1000.0, output: str = CHANNEL_CREDIT
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``fn(paths, context) -> group, channel, conversions, revenue``
    as a path model."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        register(
            AttributionModel(
                name=name,
                kind=PATH,
                description=description,
                order=order,
                credit=fn,
                output=output,
                module=fn.__module__,
            )
        )
        return fn

    return decorate


def models(
    runs_on: str | None = None, kind: str | None = None, output: str | None = None
) -> list[AttributionModel]:
    """Registered models in listing order, optionally only those that run on ``runs_on``
    (``paths`` / ``warehouse``), of ``kind`` or with ``output``."""
    _discover()
    with _LOCK:
        chosen = list(_MODELS.values())
    return sorted(
        (
            m
            for m in chosen
            if (runs_on is None or runs_on in m.runs_on)
            and (kind is None or m.kind == kind)
            and (output is None or m.output == output)
        ),
        key=lambda m: (m.order, m.name),
    )


def names(
    runs_on: str | None = None, kind: str | None = None, output: str | None = None
) -> tuple[str, ...]:
    """Names of :func:`models` (same filters)."""
    return tuple(m.name for m in models(runs_on, kind, output))


def get(name: str) -> AttributionModel:
    """The model ``name``; ``ValueError`` naming the registered ones when there is none."""
    _discover()
    with _LOCK:
        model = _MODELS.get(name)
    if model is None:
        raise ValueError(f"unknown model {name!r}; choose from {list(names())}")
    return model


def check(requested: Iterable[str], runs_on: str) -> tuple[str, ...]:
    """The requested names, validated for ``runs_on``, in the order given (duplicates dropped).

    ``ValueError`` for an unknown name or none (listing the models that run there), and for
    a model that does not run there (saying why).
    """
    chosen = tuple(dict.fromkeys(requested))
    allowed = names(runs_on)
    registered = {m.name: m for m in models()}
    for name in chosen:
        model = registered.get(name)
        if model is not None and runs_on not in model.runs_on:
            if runs_on == PATHS and model.needs:
                raise ValueError(
                    f"{name} needs {model.needs}; aggregated paths carry none "
                    "(use the warehouse tables)"
                )
            raise ValueError(f"{name} does not run on {runs_on} (it runs on {model.runs_on})")
    unknown = [m for m in chosen if m not in registered]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; choose from {list(allowed)}")
    if not chosen:
        raise ValueError(f"no model chosen; choose from {list(allowed)}")
    return chosen


def _discover() -> None:
    """Import every module of the ``triangulate.mta`` package once (built-in models
    register themselves on import). A module that reads the registry while it is being
    imported sees the models registered so far."""
    global _DISCOVERED, _DISCOVERING
    if _DISCOVERED:
        return
    with _DISCOVERY_LOCK:
        if _DISCOVERED or _DISCOVERING:
            return
        _DISCOVERING = True
        try:
            package = importlib.import_module("triangulate.mta")
            for info in pkgutil.iter_modules(package.__path__):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{package.__name__}.{info.name}")
            _DISCOVERED = True
        finally:
            _DISCOVERING = False
