"""The MMM configuration: one YAML file (``triangulate/mmm/mmm.yaml``), validated.

A typo in a key is an error, not a silently ignored setting: every section accepts only
the keys listed in its dataclass. Values are checked for type and range, and
``check_columns`` checks the configuration against a weekly table, naming the first
channel or control whose column is missing.

Channels and controls have one owner each, read here as defaults: the channels are the
paid channels of the channel registry (:mod:`triangulate.channels`), the controls every
``control_<name>`` column of the weekly table (``marts.mmm_weekly_input`` has one per
control the brand landed, or none; :func:`resolve_controls`). A list in the YAML selects a
subset, or names the columns of a bring-your-own-data table.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from triangulate.decisions import DecisionRules

DEFAULT_CONFIG_PATH = Path(__file__).with_name("mmm.yaml")

SPEND_PREFIX = "spend_"
CONTROL_PREFIX = "control_"
ADSTOCK_KINDS = ("geometric", "weibull", "delayed")
SATURATION_KINDS = ("logistic", "hill")
HIERARCHIES = ("national", "geo")


class ConfigError(ValueError):
    """The MMM configuration (or the data it is checked against) is invalid."""


@dataclass(frozen=True)
class DataConfig:
    date_column: str = "week_start"
    target_column: str = "net_revenue"
    geo_column: str = "geo"


@dataclass(frozen=True)
class ModelConfig:
    hierarchy: str = "national"
    adstock: str = "geometric"
    l_max: int = 8
    saturation: str = "logistic"
    yearly_seasonality: int = 2
    trend: bool = True
    trend_changepoints: int = 3


@dataclass(frozen=True)
class PriorConfig:
    media_beta_sigma_total: float = 1.0
    geo_beta_sd: float = 0.0
    """Geo model only: prior scale (HalfNormal) of the geos' deviation from the national
    saturation beta on the log scale (partial pooling, non-centered); 0 pools fully: every
    geo shares the national beta of the channel on its population-scaled data."""
    geo_intercept_sd: float = 0.0
    """Geo model only: prior scale (HalfNormal) of the geos' spread around a common
    intercept (partial pooling, non-centered); 0 keeps one independent intercept per geo,
    ``Normal(1, 1)`` each."""
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SamplerConfig:
    chains: int = 4
    draws: int = 1000
    tune: int = 500
    seed: int = 42
    target_accept: float = 0.9
    nuts_sampler: str = "nutpie"
    cores: int = 2
    prior_predictive_draws: int = 500
    max_draws: int | None = None
    """Longest run when R-hat or bulk ESS miss the gate: the fit is sampled again with
    twice the draws until it converges or would exceed this (None: never sample again)."""
    max_target_accept: float | None = None
    """Highest target_accept when the divergences exceed the gate: the fit is sampled
    again with a smaller step size, target_accept raised to ``1 - (1 - t) / 5`` (0.95 ->
    0.99) up to this (None: never sample again for divergences)."""
    warm_start: bool = True
    """Weekly refresh (issue 25): start a refit from the last published run's posterior
    when the model is the same and the data only gained weeks (``triangulate.mmm.refresh``)."""
    warm_tune: int = 250
    """Tuning steps per chain of a warm-started fit (at most ``tune``): its chains start at
    draws of the previous posterior, so step size and mass matrix are all there is to learn."""
    warm_draws: int | None = None
    """Draws per chain of a warm-started fit (None: ``draws``); a fit that misses the gate's
    R-hat or ESS is sampled again with twice the draws, up to ``max_draws``, as any fit."""


@dataclass(frozen=True)
class GateConfig:
    r_hat_max: float = 1.01
    ess_bulk_min: float = 400.0
    max_divergences: int = 0
    mape_in_sample_max: float = 0.15
    mape_holdout_max: float = 0.25
    holdout_weeks: int = 13


_RULES = DecisionRules()
"""The decision engine's own defaults: the one owner of the plan's settings' values."""


@dataclass(frozen=True)
class BudgetConfig:
    """The budget plan and the per-channel decisions (``triangulate.decisions``; the
    meaning of each key is in ``DecisionRules`` and docs/decisions.md)."""

    horizon_weeks: int = _RULES.horizon_weeks
    lookback_weeks: int = 13  # current weekly spend = mean of the last N weeks
    bound_fraction: float = _RULES.bound_fraction
    target_roas: float = _RULES.target_roas
    confidence: float = _RULES.confidence
    hold_band: float = _RULES.hold_band
    step: float = _RULES.step
    test_width: float = _RULES.test_width
    mode: str = _RULES.mode
    stale_after_weeks: int = 2  # data older than this at plan time get a staleness warning

    def rules(self, mode: str | None = None) -> DecisionRules:
        """The decision engine's settings from this config (every shared key)."""
        shared = {f.name: getattr(self, f.name) for f in fields(DecisionRules)}
        return DecisionRules(**(shared | ({"mode": mode} if mode else {})))


@dataclass(frozen=True)
class MMMConfig:
    """Everything one MMM run needs besides the data. Build it with ``load_config``."""

    channels: tuple[str, ...]
    controls: tuple[str, ...] | None = ()
    """Control names; ``None``: every ``control_<name>`` column of the table
    (:func:`resolve_controls`), the default when the YAML sets no ``controls``."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    priors: PriorConfig = field(default_factory=PriorConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, not tuples), the same shape as the YAML file."""
        raw = dataclasses.asdict(self)
        raw["channels"] = list(self.channels)
        raw["controls"] = None if self.controls is None else list(self.controls)
        return raw


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "priors": PriorConfig,
    "sampler": SamplerConfig,
    "gate": GateConfig,
    "budget": BudgetConfig,
}


def load_config(path: str | Path | None = None, **overrides: Any) -> MMMConfig:
    """Read and validate an MMM YAML file (default: the project's ``mmm.yaml``).

    ``overrides`` replace top-level keys or whole sections after reading, with sections
    merged key by key, e.g. ``load_config(channels=["x1", "x2"], sampler={"draws": 300})``.
    Raises ``ConfigError`` naming the file and the offending key.
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"MMM config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    for key, value in overrides.items():
        if key in _SECTIONS and isinstance(value, dict):
            raw[key] = {**(raw.get(key) or {}), **value}
        else:
            raw[key] = value
    return config_from_dict(raw, source=str(path))


def config_from_dict(raw: dict[str, Any], source: str = "config") -> MMMConfig:
    """Validate a config mapping (the parsed YAML) into an ``MMMConfig``."""
    known = {"channels", "controls", *_SECTIONS}
    if unknown := sorted(set(raw) - known):
        raise ConfigError(
            f"{source}: unknown key(s) {unknown} at the top level; expected {sorted(known)}"
        )
    if "channels" not in raw:  # default: the paid channels of the channel registry
        from triangulate.channels import paid_channels

        raw = {**raw, "channels": paid_channels()}
    channels = _names(raw.get("channels"), f"{source}: channels", required=True)
    controls = (  # not set: every control_<name> column of the table (resolve_controls)
        None
        if raw.get("controls") is None
        else _names(raw["controls"], f"{source}: controls", required=False)
    )
    if clash := sorted(set(channels) & set(controls or ())):
        raise ConfigError(f"{source}: {clash} listed both as channel and as control")
    sections = {
        name: _section(cls, raw.get(name) or {}, f"{source}: {name}")
        for name, cls in _SECTIONS.items()
    }
    config = MMMConfig(channels=channels, controls=controls, **sections)
    _check_values(config, source)
    return config


def _names(value: Any, where: str, *, required: bool) -> tuple[str, ...]:
    if value is None or (isinstance(value, list) and not value):
        if required:
            raise ConfigError(f"{where}: at least one name is required")
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a list of non-empty names, got {value!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: duplicate names in {value}")
    return tuple(value)


def _section(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {raw!r}")
    names = {f.name for f in fields(cls)}
    if unknown := sorted(set(raw) - names):
        raise ConfigError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(names)}")
    hints = get_type_hints(cls)
    values = {}
    for key, value in raw.items():
        expected = hints[key]
        if expected is bool:
            ok = isinstance(value, bool)
        elif expected is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif expected == int | None:
            ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
        elif expected is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif expected == float | None:
            ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
            value = float(value) if ok and value is not None else value
        elif expected is str:
            ok = isinstance(value, str)
        else:
            ok = isinstance(value, dict)
        if not ok:
            raise ConfigError(
                f"{where}.{key}: expected {getattr(expected, '__name__', expected)}, got {value!r}"
            )
        values[key] = value
    return cls(**values)


def _check_values(config: MMMConfig, source: str) -> None:
    def need(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise ConfigError(f"{source}: {key}: {message}")

    m, s, g, b = config.model, config.sampler, config.gate, config.budget
    need(
        m.hierarchy in HIERARCHIES,
        "model.hierarchy",
        f"expected one of {HIERARCHIES}, got {m.hierarchy!r}",
    )
    need(
        m.adstock in ADSTOCK_KINDS,
        "model.adstock",
        f"expected one of {ADSTOCK_KINDS}, got {m.adstock!r}",
    )
    need(
        m.saturation in SATURATION_KINDS,
        "model.saturation",
        f"expected one of {SATURATION_KINDS}, got {m.saturation!r}",
    )
    need(m.l_max >= 1, "model.l_max", f"must be >= 1 week, got {m.l_max}")
    need(
        m.yearly_seasonality >= 0,
        "model.yearly_seasonality",
        f"must be >= 0, got {m.yearly_seasonality}",
    )
    need(
        m.trend_changepoints >= 1,
        "model.trend_changepoints",
        f"must be >= 1, got {m.trend_changepoints}",
    )
    need(config.priors.media_beta_sigma_total > 0, "priors.media_beta_sigma_total", "must be > 0")
    need(config.priors.geo_beta_sd >= 0, "priors.geo_beta_sd", "must be >= 0")
    need(config.priors.geo_intercept_sd >= 0, "priors.geo_intercept_sd", "must be >= 0")
    need(
        s.chains >= 1 and s.draws >= 1 and s.tune >= 0,
        "sampler",
        "chains and draws must be >= 1, tune >= 0",
    )
    need(s.warm_tune >= 0, "sampler.warm_tune", f"must be >= 0, got {s.warm_tune}")
    need(
        s.warm_draws is None or s.warm_draws >= 1,
        "sampler.warm_draws",
        f"must be >= 1 (or unset), got {s.warm_draws}",
    )
    need(
        s.max_draws is None or s.max_draws >= s.draws,
        "sampler.max_draws",
        f"must be >= sampler.draws ({s.draws}), got {s.max_draws}",
    )
    need(
        0 < s.target_accept < 1,
        "sampler.target_accept",
        f"must be in (0, 1), got {s.target_accept}",
    )
    need(
        s.max_target_accept is None or s.target_accept <= s.max_target_accept < 1,
        "sampler.max_target_accept",
        f"must be in [sampler.target_accept ({s.target_accept}), 1), got {s.max_target_accept}",
    )
    need(
        s.nuts_sampler in ("nutpie", "pymc", "numpyro", "blackjax"),
        "sampler.nuts_sampler",
        f"unknown sampler {s.nuts_sampler!r}",
    )
    need(g.r_hat_max >= 1, "gate.r_hat_max", f"must be >= 1, got {g.r_hat_max}")
    need(g.holdout_weeks >= 0, "gate.holdout_weeks", f"must be >= 0, got {g.holdout_weeks}")
    need(
        b.horizon_weeks >= 1 and b.lookback_weeks >= 1,
        "budget",
        "horizon_weeks and lookback_weeks must be >= 1",
    )
    need(
        0 <= b.bound_fraction < 1,
        "budget.bound_fraction",
        f"must be in [0, 1), got {b.bound_fraction}",
    )
    try:
        b.rules()
    except ValueError as exc:
        need(False, "budget", str(exc))
    for name, prior in config.priors.overrides.items():
        need(
            isinstance(prior, dict) and "dist" in prior,
            f"priors.overrides.{name}",
            "expected a pymc_extras Prior dict like {dist: Normal, kwargs: {mu: 0, sigma: 1}}",
        )


def spend_column(channel: str, columns: list[str]) -> str | None:
    """The column holding ``channel``'s spend: ``spend_<channel>`` if present, else ``channel``."""
    for candidate in (f"{SPEND_PREFIX}{channel}", channel):
        if candidate in columns:
            return candidate
    return None


def control_column(control: str, columns: list[str]) -> str | None:
    """The column holding control ``control``: ``control_<name>`` if present, else ``name``."""
    for candidate in (f"{CONTROL_PREFIX}{control}", control):
        if candidate in columns:
            return candidate
    return None


def resolve_controls(config: MMMConfig, columns: list[str]) -> MMMConfig:
    """``config`` with its controls named: when it sets none (``None``, the default), every
    ``control_<name>`` column of the table, in table order (none is fine: a brand has the
    controls it landed, ``marts.mmm_weekly_input`` one column per control)."""
    if config.controls is not None:
        return config
    found = tuple(
        c[len(CONTROL_PREFIX) :]
        for c in columns
        if c.startswith(CONTROL_PREFIX) and len(c) > len(CONTROL_PREFIX)
    )
    return dataclasses.replace(config, controls=tuple(n for n in found if n not in config.channels))


def check_columns(
    config: MMMConfig, columns: list[str], source: str = "weekly data"
) -> dict[str, str]:
    """Map every channel, control, date, target (and geo) to its column; raise if one is missing.

    Returns ``{model name: column name}``. The error names the missing channel or control,
    the column names that were tried, and the columns the table has. Controls not set in
    the config are the table's ``control_<name>`` columns (:func:`resolve_controls`).
    """
    columns = list(columns)
    config = resolve_controls(config, columns)
    mapping: dict[str, str] = {}
    required = [config.data.date_column, config.data.target_column]
    if config.model.hierarchy == "geo":
        required.append(config.data.geo_column)
    for column in required:
        if column not in columns:
            raise ConfigError(f"{source}: column {column!r} is missing; columns are {columns}")
    for channel in config.channels:
        column = spend_column(channel, columns)
        if column is None:
            raise ConfigError(
                f"{source}: channel {channel!r} is missing: expected a column "
                f"{SPEND_PREFIX + channel!r} or {channel!r}; columns are {columns}"
            )
        mapping[channel] = column
    for control in config.controls:
        column = control_column(control, columns)
        if column is None:
            raise ConfigError(
                f"{source}: control {control!r} is missing: expected a column "
                f"{CONTROL_PREFIX + control!r} or {control!r}; columns are {columns}"
            )
        mapping[control] = column
    return mapping
