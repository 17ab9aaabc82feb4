"""One recommendation per channel: the decision and the budget plan from the same draws.

Why one engine: a decision table and a budget plan computed by two rules (one from point
estimates against a target, one from a posterior-mean optimizer) can and did recommend
opposite things. Here the plan *is* the decision: every channel's decision is the sign of
its planned spend change, and the plan moves money only where the posterior is confident.

Inputs (:class:`ResponseDraws`), all per posterior draw ``s``:

* ``R_s,c(m)``: channel ``c``'s steady-state weekly response (money per week) when its
  weekly spend is ``m x X_c`` (``X_c`` = current weekly spend, money per week), on a grid
  of multipliers ``m``; linear interpolation between grid points.

Derived quantities:

* segment return of a move from ``m0`` to ``m1``:
  ``r_s = (R_s,c(m1) - R_s,c(m0)) / ((m1 - m0) X_c)`` (money back per unit of money);
* marginal ROAS at the current spend: the segment return of ``[1 - h, 1 + h]``
  (``h`` = the grid spacing);
* ``target_roas`` ``T`` is the break-even line: the ROAS at which one more unit of spend
  pays for itself (``1 / margin`` when revenue is net revenue and the margin is the
  contribution margin; 1.0 = break-even on revenue). The value of a plan is
  ``V_s = horizon x sum_c [R_s,c(m_c) - R_s,c(1) - T X_c (m_c - 1)]`` (money over the
  horizon, revenue-equivalent): extra revenue minus what the extra spend must earn back.

Two plans, one rule ("move only when P >= ``confidence``"):

* ``total`` (the default): each channel independently. Spend goes up by steps of
  ``step x X_c`` while the next step's return beats ``T`` with probability at least
  ``confidence``, down while the last step's return falls short of ``T`` with that
  probability; never beyond ``+/- bound_fraction``. Moves smaller than ``hold_band`` are
  not made.
* ``reallocate`` (fixed total): money moves in steps of ``step x`` the total weekly budget
  from a giving channel ``g`` to a receiving channel ``r`` only when
  ``P(return of r's next step > return of g's last step) >= confidence``; the pair with the
  largest expected difference moves first; a channel only ever gives or only receives.

Decision of a channel = direction of its planned change: ``scale`` (up),
``shift_budget_away`` (down), ``hold`` (unchanged). A held channel whose marginal ROAS
interval contains the target and is wide (the data cannot say which side it is on) is a
``test``: spend held until a geo experiment reads out. ``confidence`` of a decision is the
posterior probability that its direction is right (for ``hold``/``test``, the probability
that the marginal ROAS is above target, reported as is).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

DECISIONS = ("scale", "shift_budget_away", "hold", "test")
PLAN_MODES = ("total", "reallocate")
HDI_PROB = 0.94


@dataclass(frozen=True)
class DecisionRules:
    """The one rule's settings (``mmm.yaml`` ``budget:``; ``triangulate.mmm.config``)."""

    target_roas: float = 1.0
    """Break-even marginal ROAS (money of revenue per money of spend)."""
    confidence: float = 0.9
    """Posterior probability a move must have before it is made (docs/decisions.md says why
    0.9: at 0.8 a move on the national MMM's over-confident posterior could go the wrong way)."""
    bound_fraction: float = 0.30
    """No channel moves more than this fraction of its current spend."""
    hold_band: float = 0.02
    """Total mode: a planned change smaller than this fraction of current spend is not made."""
    step: float = 0.01
    """Search step: fraction of a channel's spend (total) or of the total budget (reallocate)."""
    test_width: float = 0.25
    """A held channel is a test candidate when its marginal-ROAS HDI contains the target and is
    wider than ``test_width x target_roas`` (narrower: it sits at the target, nothing to learn)."""
    horizon_weeks: int = 13
    mode: str = "total"

    def __post_init__(self) -> None:
        if self.target_roas <= 0:
            raise ValueError(f"target_roas must be positive, got {self.target_roas}")
        if not 0.5 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0.5, 1), got {self.confidence}")
        if not 0 <= self.bound_fraction < 1:
            raise ValueError(f"bound_fraction must be in [0, 1), got {self.bound_fraction}")
        if not 0 < self.step <= 0.1:
            raise ValueError(f"step must be in (0, 0.1], got {self.step}")
        if self.mode not in PLAN_MODES:
            raise ValueError(f"mode must be one of {', '.join(PLAN_MODES)}, got {self.mode!r}")
        if self.horizon_weeks < 1:
            raise ValueError(f"horizon_weeks must be >= 1, got {self.horizon_weeks}")


@dataclass
class ResponseDraws:
    """Posterior draws of each channel's steady-state weekly response around current spend.

    ``weekly_response[s, c, p]``: money per week for draw ``s`` when channel ``c`` spends
    ``multipliers[p] x current_weekly_spend[c]`` per week. ``multipliers`` ascend, include
    1.0 and cover at least ``1 +/- (bound_fraction + step)``.
    """

    channels: tuple[str, ...]
    current_weekly_spend: np.ndarray
    multipliers: np.ndarray
    weekly_response: np.ndarray

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        self.current_weekly_spend = np.asarray(self.current_weekly_spend, dtype=float)
        self.multipliers = np.asarray(self.multipliers, dtype=float)
        self.weekly_response = np.asarray(self.weekly_response, dtype=float)
        _s, c, p = self.weekly_response.shape
        if c != len(self.channels) or p != len(self.multipliers):
            raise ValueError(
                f"weekly_response has shape {self.weekly_response.shape}; expected "
                f"(draws, {len(self.channels)} channels, {len(self.multipliers)} multipliers)"
            )
        if self.current_weekly_spend.shape != (c,):
            raise ValueError("current_weekly_spend needs one value per channel")
        if np.any(np.diff(self.multipliers) <= 0):
            raise ValueError("multipliers must be strictly ascending")

    @property
    def n_draws(self) -> int:
        return self.weekly_response.shape[0]

    def response(self, c: int, m: float) -> np.ndarray:
        """Draws of channel ``c``'s weekly response at multiplier ``m`` (linear interpolation)."""
        grid = self.multipliers
        if not grid[0] - 1e-9 <= m <= grid[-1] + 1e-9:
            raise ValueError(f"multiplier {m:.3f} outside the grid [{grid[0]}, {grid[-1]}]")
        k = int(np.clip(np.searchsorted(grid, m) - 1, 0, len(grid) - 2))
        w = (m - grid[k]) / (grid[k + 1] - grid[k])
        curve = self.weekly_response[:, c, :]
        return (1 - w) * curve[:, k] + w * curve[:, k + 1]

    def segment_return(self, c: int, m0: float, m1: float) -> np.ndarray:
        """Draws of the return per unit of spend moved from ``m0`` to ``m1`` (``m0 != m1``)."""
        spend = (m1 - m0) * self.current_weekly_spend[c]
        return (self.response(c, m1) - self.response(c, m0)) / spend

    def marginal_roas(self, c: int, m: float = 1.0) -> np.ndarray:
        h = float(np.min(np.diff(self.multipliers)))
        lo, hi = max(m - h, self.multipliers[0]), min(m + h, self.multipliers[-1])
        return self.segment_return(c, lo, hi)


def hdi(draws: np.ndarray, prob: float = HDI_PROB) -> tuple[float, float]:
    """Narrowest interval holding ``prob`` of the draws."""
    x = np.sort(np.asarray(draws, dtype=float).ravel())
    n = len(x)
    k = max(int(np.floor(prob * n)), 1)
    if n <= k:
        return float(x[0]), float(x[-1])
    widths = x[k:] - x[: n - k]
    i = int(np.argmin(widths))
    return float(x[i]), float(x[i + k])


@dataclass
class BudgetDecision:
    """A plan and the decisions it implies. ``channels`` has one row per channel."""

    mode: str
    rules: DecisionRules
    channels: pd.DataFrame
    value_draws: np.ndarray
    """Draws of the plan's value over the horizon (money; see the module docstring)."""
    revenue_change_draws: np.ndarray
    """Draws of the plan's change in revenue over the horizon (money)."""
    notes: list[str] = field(default_factory=list)

    def summary(self, horizon_revenue: float = float("nan")) -> dict:
        """Plan-level numbers: spend totals, expected value with its HDI, the value as a share
        of the horizon's revenue, and P(plan beats the current allocation)."""
        rows = self.channels
        moved = bool((rows["planned_weekly_spend"] != rows["current_weekly_spend"]).any())
        low, high = hdi(self.value_draws) if moved else (0.0, 0.0)
        r_low, r_high = hdi(self.revenue_change_draws) if moved else (0.0, 0.0)
        h = self.rules.horizon_weeks
        expected = float(self.value_draws.mean()) if moved else 0.0
        return {
            "plan": self.mode,
            "horizon_weeks": h,
            "target_roas": self.rules.target_roas,
            "confidence_required": self.rules.confidence,
            "current_spend": float(rows["current_weekly_spend"].sum() * h),
            "planned_spend": float(rows["planned_weekly_spend"].sum() * h),
            "expected_value": expected,
            "value_hdi_low": low,
            "value_hdi_high": high,
            "expected_revenue_change": float(self.revenue_change_draws.mean()) if moved else 0.0,
            "revenue_change_hdi_low": r_low,
            "revenue_change_hdi_high": r_high,
            "value_pct_of_revenue": expected / horizon_revenue
            if np.isfinite(horizon_revenue) and horizon_revenue > 0
            else float("nan"),
            "p_beats_current": float((self.value_draws > 0).mean()) if moved else float("nan"),
            "channels_moved": int(
                (rows["planned_weekly_spend"] != rows["current_weekly_spend"]).sum()
            ),
        }


def _total_moves(draws: ResponseDraws, rules: DecisionRules) -> np.ndarray:
    """Per-channel multipliers of the ``total`` plan (module docstring)."""
    T, p, step, b = rules.target_roas, rules.confidence, rules.step, rules.bound_fraction
    out = np.ones(len(draws.channels))
    for c in range(len(draws.channels)):
        if draws.current_weekly_spend[c] <= 0:
            continue
        m = 1.0
        while m + step <= 1 + b + 1e-9 and (draws.segment_return(c, m, m + step) > T).mean() >= p:
            m = round(m + step, 10)
        if m == 1.0:
            while (
                m - step >= 1 - b - 1e-9 and (draws.segment_return(c, m - step, m) < T).mean() >= p
            ):
                m = round(m - step, 10)
        out[c] = 1.0 if abs(m - 1.0) < rules.hold_band - 1e-9 else m
    return out


def _reallocation_moves(draws: ResponseDraws, rules: DecisionRules) -> np.ndarray:
    """Per-channel multipliers of the fixed-total ``reallocate`` plan (module docstring).

    A move shifts ``step x`` the smaller of the two channels' current weekly spend, so a
    small channel can still move within its bound."""
    X = draws.current_weekly_spend
    n = len(X)
    m = np.ones(n)
    direction = np.zeros(n)  # +1 receives, -1 gives, 0 untouched
    lo, hi = 1 - rules.bound_fraction, 1 + rules.bound_fraction
    paid = [c for c in range(n) if X[c] > 0]
    for _ in range(int(2 * rules.bound_fraction / rules.step + 1) * n * n):
        best, best_gain = None, 0.0
        for r in paid:
            if direction[r] < 0:
                continue
            for g in paid:
                if g == r or direction[g] > 0:
                    continue
                delta = rules.step * min(X[r], X[g])
                if m[r] + delta / X[r] > hi + 1e-9 or m[g] - delta / X[g] < lo - 1e-9:
                    continue
                diff = draws.segment_return(r, m[r], m[r] + delta / X[r]) - draws.segment_return(
                    g, m[g] - delta / X[g], m[g]
                )
                if (diff > 0).mean() >= rules.confidence and diff.mean() > best_gain:
                    best, best_gain = (r, g, delta), float(diff.mean())
        if best is None:
            break
        r, g, delta = best
        m[r] += delta / X[r]
        m[g] -= delta / X[g]
        direction[r], direction[g] = 1, -1
    return m


def _pooled_returns(draws: ResponseDraws, m: np.ndarray) -> dict[str, np.ndarray]:
    """Draws of the return per unit of the money all givers give up (``given``) and all
    receivers receive (``received``); NaN where nothing moves that way."""
    X = draws.current_weekly_spend
    out = {}
    for name, sign in (("given", -1), ("received", 1)):
        cells = [c for c in range(len(X)) if np.sign(m[c] - 1.0) == sign]
        money = sum(abs(m[c] - 1.0) * X[c] for c in cells)
        if not cells or money <= 0:
            out[name] = np.full(draws.n_draws, np.nan)
            continue
        change = sum(abs(draws.response(c, m[c]) - draws.response(c, 1.0)) for c in cells)
        out[name] = change / money
    return out


def decide(draws: ResponseDraws, rules: DecisionRules | None = None) -> BudgetDecision:
    """The plan of ``rules.mode`` and each channel's decision (the sign of its change)."""
    rules = rules or DecisionRules()
    T = rules.target_roas
    needed = 1 + rules.bound_fraction + rules.step
    if draws.multipliers[0] > 2 - needed + 1e-9 or draws.multipliers[-1] < needed - 1e-9:
        raise ValueError(
            f"multipliers cover [{draws.multipliers[0]}, {draws.multipliers[-1]}]; the rules "
            f"need at least [{2 - needed:.2f}, {needed:.2f}]"
        )
    m = _total_moves(draws, rules) if rules.mode == "total" else _reallocation_moves(draws, rules)
    h = rules.horizon_weeks
    X = draws.current_weekly_spend
    revenue_change = np.zeros(draws.n_draws)
    pooled = _pooled_returns(draws, m)
    rows = []
    for c, channel in enumerate(draws.channels):
        mroas = draws.marginal_roas(c)
        low, high = hdi(mroas)
        p_above = float((mroas > T).mean())
        change = draws.response(c, m[c]) - draws.response(c, 1.0)
        revenue_change += h * change
        if m[c] > 1:
            decision = "scale"
            # total: the added spend earns more than the target; reallocate: more than the
            # money it came from earned where it was
            bar = T if rules.mode == "total" else pooled["given"]
            confidence = float((draws.segment_return(c, 1.0, m[c]) > bar).mean())
        elif m[c] < 1:
            decision = "shift_budget_away"
            bar = T if rules.mode == "total" else pooled["received"]
            confidence = float((draws.segment_return(c, m[c], 1.0) < bar).mean())
        else:
            wide = high - low > rules.test_width * T
            decision = "test" if (low < T < high and wide and X[c] > 0) else "hold"
            confidence = p_above
        rows.append(
            {
                "channel": channel,
                "decision": decision,
                "current_weekly_spend": float(X[c]),
                "planned_weekly_spend": float(X[c] * m[c]),
                "spend_change_pct": float(m[c] - 1.0),
                "mroas": float(mroas.mean()),
                "mroas_hdi_low": low,
                "mroas_hdi_high": high,
                "p_mroas_above_target": p_above,
                "confidence": confidence,
                "expected_revenue_change": float(h * change.mean()),
                "revenue_change_hdi_low": hdi(h * change)[0] if m[c] != 1 else 0.0,
                "revenue_change_hdi_high": hdi(h * change)[1] if m[c] != 1 else 0.0,
                "test_priority": float(X[c] * h * np.std(mroas)) if decision == "test" else 0.0,
                "reason": "",
            }
        )
    table = pd.DataFrame(rows)
    table["reason"] = [_reason(row, rules) for row in table.to_dict("records")]
    spend_change = float(((m - 1.0) * X).sum()) * h
    value = revenue_change - T * spend_change
    return BudgetDecision(
        mode=rules.mode,
        rules=rules,
        channels=table,
        value_draws=value,
        revenue_change_draws=revenue_change,
    )


def _reason(row: dict, rules: DecisionRules) -> str:
    T, p = rules.target_roas, rules.confidence
    interval = f"marginal ROAS {row['mroas']:.2f} (94% HDI {row['mroas_hdi_low']:.2f}-{row['mroas_hdi_high']:.2f})"
    move = f"{row['spend_change_pct']:+.0%}"
    if row["decision"] == "scale":
        if rules.mode == "reallocate":
            return (
                f"{interval}: its next dollar beats the channels it takes budget from with "
                f"P >= {p:.0%}; spend {move}."
            )
        return (
            f"{interval}: the next dollar returns more than the {T:.2f} target with "
            f"P = {row['confidence']:.0%} (>= {p:.0%}); spend {move}, stopping where that "
            "confidence ends or at the bound."
        )
    if row["decision"] == "shift_budget_away":
        if rules.mode == "reallocate":
            return (
                f"{interval}: channels receiving its budget beat its last dollar with "
                f"P >= {p:.0%}; spend {move}."
            )
        return (
            f"{interval}: the last dollar returns less than the {T:.2f} target with "
            f"P = {row['confidence']:.0%} (>= {p:.0%}); spend {move}."
        )
    if row["decision"] == "test":
        return (
            f"{interval} contains the {T:.2f} target and is too wide to say which side it is "
            f"on (P above target {row['p_mroas_above_target']:.0%}): hold spend and run a geo "
            "test (measurement.experiment_plan)."
        )
    return (
        f"{interval}; P above the {T:.2f} target {row['p_mroas_above_target']:.0%}: no move "
        f"is confident at {p:.0%}, hold spend."
    )
