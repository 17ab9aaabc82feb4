"""The truth a measurement system is judged against (``DIR/truth/``).

Realized truth (what actually happened in this draw) and expected truth (the means the
draw came from) are both written; ROAS and marginal ROAS are defined as:

- ``roas = incremental revenue / spend`` over a period, realized and expected;
- ``mroas = d revenue / d spend``: expected revenue gained per extra USD when the
  channel's spend in the period is scaled up by 1% (carryover inside the period).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from triangulate.simulator import config as cfg
from triangulate.simulator import economics as eco
from triangulate.simulator.journeys import UNTRACKED, People
from triangulate.simulator.world import World

BASELINE = "baseline"


def _weeks(world: World) -> np.ndarray:
    return np.array(
        [world.calendar.week_start(w) for w in range(cfg.N_WEEKS)], dtype="datetime64[D]"
    )


def weekly_incremental_revenue(world: World) -> pd.DataFrame:
    """week_start x geo x component (channel or baseline): realized orders and revenue,
    expected revenue, and true USD spend."""
    o = world.orders
    names = [*cfg.CHANNEL_NAMES, BASELINE]
    G, W = len(world.metros), cfg.N_WEEKS
    week = o.day // 7
    key = (o.cause * G + o.geo_idx) * W + week
    n_keys = len(names) * G * W
    revenue = np.bincount(key, weights=o.value_usd, minlength=n_keys).reshape(len(names), G, W)
    orders = np.bincount(key, minlength=n_keys).reshape(len(names), G, W)
    expected = (
        np.concatenate(
            [world.expected_revenue, world.baseline_orders[None] * cfg.AVERAGE_ORDER_VALUE]
        )
        .reshape(len(names), G, W, 7)
        .sum(axis=3)
    )
    spend = (
        np.concatenate([world.spend_usd, np.zeros((1, G, world.calendar.n_days))])
        .reshape(len(names), G, W, 7)
        .sum(axis=3)
    )
    idx = np.indices((len(names), G, W)).reshape(3, -1)
    return pd.DataFrame({
        "week_start": _weeks(world)[idx[2]],
        "geo": np.array([m.geo for m in world.metros])[idx[1]],
        "component": np.array(names)[idx[0]],
        "orders": orders.ravel(),
        "revenue": np.round(revenue.ravel(), 4),
        "expected_revenue": np.round(expected.ravel(), 4),
        "spend": np.round(spend.ravel(), 4),
    })  # fmt: skip


def weekly_revenue(world: World) -> pd.DataFrame:
    """week_start x geo: orders, gross, refunds and net revenue (refunds count in the week
    the order was placed, as in ``marts.fct_weekly_revenue``)."""
    o = world.orders
    G, W = len(world.metros), cfg.N_WEEKS
    key = o.geo_idx * W + o.day // 7
    rate = o.value_usd / (o.amount_minor / 100.0)  # USD per unit on the order day
    refunds_usd = o.refund_minor / 100.0 * rate
    idx = np.indices((G, W)).reshape(2, -1)
    gross = np.bincount(key, weights=o.value_usd, minlength=G * W)
    refunds = np.bincount(key, weights=refunds_usd, minlength=G * W)
    return pd.DataFrame({
        "week_start": _weeks(world)[idx[1]],
        "geo": np.array([m.geo for m in world.metros])[idx[0]],
        "orders": np.bincount(key, minlength=G * W),
        "gross_revenue": np.round(gross, 4),
        "refunds": np.round(refunds, 4),
        "net_revenue": np.round(gross - refunds, 4),
    })  # fmt: skip


def _expected_total(world: World, c: int, spend: np.ndarray) -> np.ndarray:
    ch = cfg.CHANNELS[c]
    return eco.response(
        eco.adstock(spend, ch.adstock_decay), world.weights, world.response_params[c]
    )


def channel_summary(world: World, weekly: pd.DataFrame) -> pd.DataFrame:
    """channel x period (``all``, ``last_52_weeks``): spend, incremental revenue, ROAS, mROAS.

    Revenue here is gross (before refunds); ``roas_net`` is the same ROAS on net revenue
    (x ``EXPECTED_NET_SHARE``), the like-for-like truth for a model fitted on net revenue."""
    rows = []
    T = world.calendar.n_days
    periods = {"all": (0, T), "last_52_weeks": (T - 52 * 7, T)}
    for period, (lo, hi) in periods.items():
        wk_lo = lo // 7
        part = weekly[weekly["week_start"] >= _weeks(world)[wk_lo]]
        for c, ch in enumerate(cfg.CHANNELS):
            own = part[part["component"] == ch.name]
            spend = float(world.spend_usd[c][:, lo:hi].sum())
            base = _expected_total(world, c, world.spend_usd[c])[:, lo:hi].sum()
            bumped_spend = world.spend_usd[c].copy()
            bumped_spend[:, lo:hi] *= 1.01
            bumped = _expected_total(world, c, bumped_spend)[:, lo:hi].sum()
            rows.append({
                "channel": ch.name, "period": period, "spend": round(spend, 2),
                "incremental_revenue": round(float(own["revenue"].sum()), 2),
                "expected_incremental_revenue": round(float(base), 2),
                "roas": float(own["revenue"].sum()) / spend if spend else float("nan"),
                "expected_roas": float(base) / spend if spend else float("nan"),
                "mroas": float(bumped - base) / (0.01 * spend) if spend else float("nan"),
                "roas_net": cfg.EXPECTED_NET_SHARE * float(own["revenue"].sum()) / spend if spend else float("nan"),
            })  # fmt: skip
    return pd.DataFrame(rows)


def experiment_truth(world: World) -> dict:
    """True effect of the meta holdout in the treatment metros over the test window.

    ``effect = E[revenue | meta paused] - E[revenue | meta as planned]`` (negative for a
    holdout of a channel that works); ``iroas = effect / spend_change`` (positive).
    """
    c = cfg.CHANNEL_NAMES.index("meta")
    first, last = world.experiment_days
    t_idx = [i for i, m in enumerate(world.metros) if m.geo in world.treatment_geos]
    window = slice(first, last + 1)
    actual = world.expected_revenue[c][t_idx, window].sum()
    counterfactual_meta = _expected_total(world, c, world.planned_spend_usd[c])[t_idx, window].sum()
    others = sum(
        world.expected_revenue[k][t_idx, window].sum() for k in range(len(cfg.CHANNELS)) if k != c
    )
    baseline = world.baseline_orders[t_idx, window].sum() * cfg.AVERAGE_ORDER_VALUE
    counterfactual_total = baseline + others + counterfactual_meta
    effect = actual - counterfactual_meta
    spend_change = (
        world.spend_usd[c][t_idx, window].sum() - world.planned_spend_usd[c][t_idx, window].sum()
    )
    return {
        "id": "meta_holdout_q4",
        "channel": "meta",
        "treatment_geos": world.treatment_geos,
        "control_geos": world.control_geos,
        "start": str(world.calendar.days[first]),
        "end": str(world.calendar.days[last]),
        "true_effect_abs": float(effect),
        "true_effect_pct": float(effect / counterfactual_total),
        "counterfactual_revenue": float(counterfactual_total),
        "spend_change": float(spend_change),
        "true_iroas": float(effect / spend_change),
        "true_effect_abs_net": float(effect * cfg.EXPECTED_NET_SHARE),
        "true_iroas_net": float(effect * cfg.EXPECTED_NET_SHARE / spend_change),
        "definition": "effect = expected revenue with meta paused - expected revenue with meta as planned, "
        "treatment metros, test window only; pct relative to the counterfactual total revenue; "
        "iroas = effect / spend_change. Revenue is gross (before refunds); the _net values are on "
        "net revenue (x expected net share 0.955), what an analysis of net revenue estimates.",
    }


def tracking_truth(world: World, people: People) -> dict:
    conv_status = people.status[: people.n_converters]
    return {
        "untracked_share": cfg.UNTRACKED_SHARE,
        "split_device_share": cfg.SPLIT_DEVICE_SHARE,
        "linked_device_share": cfg.LINKED_DEVICE_SHARE,
        "view_pixel_share": cfg.VIEW_PIXEL_SHARE,
        "orders": int(people.n_converters),
        "tracked_conversions": int((conv_status != UNTRACKED).sum()),
        "untracked_conversions": int((conv_status == UNTRACKED).sum()),
        "people": len(people.status),
    }


def parameters(world: World) -> dict:
    return {
        "scale": world.scale.name,
        "seed": world.seed,
        "start_date": str(world.calendar.days[0]),
        "end_date": str(world.calendar.days[-1]),
        "geos": [m.geo for m in world.metros],
        "population_weights": {
            m.geo: float(w) for m, w in zip(world.metros, world.weights, strict=True)
        },
        "expected_net_share": cfg.EXPECTED_NET_SHARE,
        "average_order_value_usd": cfg.AVERAGE_ORDER_VALUE,
        "refund_rate": cfg.REFUND_RATE,
        "channels": {
            ch.name: {
                "adstock": "geometric, normalized, daily",
                "adstock_decay_per_day": ch.adstock_decay,
                "saturation": "michaelis-menten: beta * w * x / (x + K), x = adstocked spend / w",
                "half_saturation_K": p.half_saturation,
                "beta": p.beta,
                "target_roas": ch.target_roas,
                "reported_by_geo": ch.reported_by_geo,
            }
            for ch, p in zip(cfg.CHANNELS, world.response_params, strict=True)
        },
        "halo": {"channels": list(cfg.HALO_CHANNELS), "arrive_via_branded_search": 0.55},
    }


def write_truth(world: World, people: People, out: Path, counts: dict) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    weekly = weekly_incremental_revenue(world)
    weekly.to_csv(out / "weekly_incremental_revenue.csv", index=False)
    weekly_revenue(world).to_csv(out / "weekly_revenue.csv", index=False)
    summary = channel_summary(world, weekly)
    summary.to_csv(out / "channel_summary.csv", index=False)
    experiment = experiment_truth(world)
    tracking = tracking_truth(world, people) | counts
    o = world.orders
    pd.DataFrame({
        "order_id": [f"ord_{world.seed:03d}{i:08d}" for i in range(len(o))],
        "geo": np.array([m.geo for m in world.metros])[o.geo_idx],
        "day": world.calendar.days[o.day],
        "cause": np.array([*cfg.CHANNEL_NAMES, BASELINE])[o.cause],
        "gross_usd": np.round(o.value_usd, 6),
        "currency": np.array([c for c, *_ in cfg.CURRENCIES])[o.currency_idx],
        "amount_minor": o.amount_minor,
        "refund_minor": o.refund_minor,
        "tracked": people.status[: len(o)] != UNTRACKED,
    }).to_csv(out / "orders.csv", index=False)  # fmt: skip
    (out / "experiment.json").write_text(json.dumps(experiment, indent=2) + "\n")
    (out / "tracking.json").write_text(json.dumps(tracking, indent=2) + "\n")
    (out / "parameters.json").write_text(json.dumps(parameters(world), indent=2) + "\n")
    return {"experiment": experiment, "tracking": tracking}


def true_response_draws(truth_dir: Path, multipliers: np.ndarray, lookback_weeks: int = 13):
    """The world's true steady-state weekly response around its current spend, as a
    one-draw :class:`triangulate.decisions.ResponseDraws`: the decision engine run on it
    gives the oracle plan, and any plan's true value is computed from it.

    Current weekly spend of a channel in a metro ``s_g`` = its mean over the last
    ``lookback_weeks`` complete weeks (``weekly_incremental_revenue.csv``). A national
    multiplier ``m`` scales every metro's spend alike; at steady state the adstock equals
    the spend, so the true weekly net revenue is
    ``R(m) = net_share x 7 x sum_g beta w_g x_g / (x_g + K)``, ``x_g = m s_g / 7 / w_g``
    (Michaelis-Menten per population unit; ``parameters.json``).
    """
    from triangulate.decisions import ResponseDraws

    params = json.loads((truth_dir / "parameters.json").read_text())
    weekly = pd.read_csv(
        truth_dir / "weekly_incremental_revenue.csv", parse_dates=["week_start"], dtype={"geo": str}
    )
    weeks = np.sort(weekly["week_start"].unique())[-lookback_weeks:]
    recent = weekly[weekly["week_start"].isin(weeks)]
    geos = list(params["geos"])
    w = np.array([params["population_weights"][g] for g in geos])
    channels = tuple(params["channels"])
    curves = np.zeros((1, len(channels), len(multipliers)))
    current = np.zeros(len(channels))
    for c, name in enumerate(channels):
        spend = (
            (recent[recent["component"] == name].groupby("geo")["spend"].sum() / len(weeks))
            .reindex(geos, fill_value=0.0)
            .to_numpy()
        )
        current[c] = spend.sum()
        beta = params["channels"][name]["beta"]
        k = params["channels"][name]["half_saturation_K"]
        x = np.asarray(multipliers)[:, None] * spend[None, :] / 7.0 / w[None, :]
        daily = beta * w[None, :] * x / (x + k)
        curves[0, c] = params["expected_net_share"] * 7.0 * daily.sum(axis=1)
    return ResponseDraws(channels, current, np.asarray(multipliers, dtype=float), curves)


def true_plan_value(
    truth_dir: Path,
    planned_change: dict[str, float],
    *,
    target_roas: float,
    horizon_weeks: int,
    lookback_weeks: int = 13,
) -> dict:
    """True value of a plan given as channel -> relative spend change (``+0.1`` = +10 %):
    ``revenue_change`` (true expected net revenue over the horizon, money) and ``value``
    (revenue change minus ``target_roas`` x spend change), with the true marginal ROAS
    per channel at current spend."""
    grid = np.round(np.arange(0.5, 1.5 + 1e-9, 0.005), 6)
    truth = true_response_draws(truth_dir, grid, lookback_weeks)
    revenue = spend = 0.0
    for c, name in enumerate(truth.channels):
        m = 1.0 + float(planned_change.get(name, 0.0))
        revenue += float(truth.response(c, m)[0] - truth.response(c, 1.0)[0])
        spend += (m - 1.0) * float(truth.current_weekly_spend[c])
    return {
        "revenue_change": horizon_weeks * revenue,
        "value": horizon_weeks * (revenue - target_roas * spend),
        "true_mroas": {
            name: float(truth.marginal_roas(c)[0]) for c, name in enumerate(truth.channels)
        },
    }


CLEAR_MARGIN = 0.25
"""A channel's true marginal ROAS is "clearly" above (below) the target when it is more than
25 % above (below) it: the demo world's per-channel ROAS noise (order noise at ~54 orders a
day, docs/benchmarks_mmm.md) is of that order, so a closer channel may go either way."""


def score_plan(truth_dir: Path, plan: pd.DataFrame, *, confident: float = 0.8) -> dict:
    """Judge a published ``measurement.budget_plan`` (one run) by the world's true response:

    * ``value`` / ``revenue_change``: the plan's true value and net-revenue change over its
      horizon (:func:`true_plan_value`), ``oracle_value``: the value of the plan the same
      rules give on the true curves themselves (one exact draw);
    * per channel: the true marginal ROAS at current spend, and whether the decision moved
      it the wrong way: ``scale`` a channel clearly below the target (total plan) or clearly
      below a channel it took budget from (reallocate), or the mirror image for
      ``shift_budget_away``; ``wrong_and_confident`` when that decision's confidence is at
      least ``confident``.
    """
    from triangulate.decisions import DecisionRules, decide

    rows = plan.set_index("channel")
    mode = str(rows["plan"].iloc[0])
    target = float(rows["target_roas"].iloc[0])
    horizon = int(rows["horizon_weeks"].iloc[0])
    changes = rows["spend_change_pct"].astype(float).to_dict()
    result = true_plan_value(truth_dir, changes, target_roas=target, horizon_weeks=horizon)
    grid = np.round(np.arange(0.5, 1.5 + 1e-9, 0.005), 6)
    truth = true_response_draws(truth_dir, grid)
    oracle = decide(truth, DecisionRules(target_roas=target, horizon_weeks=horizon, mode=mode))
    true_mroas = result["true_mroas"]
    receivers = [c for c in rows.index if rows.loc[c, "decision"] == "scale"]
    givers = [c for c in rows.index if rows.loc[c, "decision"] == "shift_budget_away"]
    channels = []
    for channel, row in rows.iterrows():
        m = true_mroas[channel]
        if mode == "total":
            clearly_above = m > target * (1 + CLEAR_MARGIN)
            clearly_below = m < target * (1 - CLEAR_MARGIN)
        else:  # against the channels on the other side of the moves: a giver is wrong when
            # it is clearly better than a receiver, a receiver when clearly worse than a giver
            clearly_above = any(m > true_mroas[r] * (1 + CLEAR_MARGIN) for r in receivers)
            clearly_below = any(m < true_mroas[g] * (1 - CLEAR_MARGIN) for g in givers)
        wrong = (row["decision"] == "scale" and clearly_below) or (
            row["decision"] == "shift_budget_away" and clearly_above
        )
        # clearly on one side, yet neither moved that way nor named for a test
        missed = row["decision"] == "hold" and (clearly_above or clearly_below)
        channels.append(
            {
                "channel": channel,
                "decision": row["decision"],
                "spend_change_pct": float(row["spend_change_pct"]),
                "confidence": float(row["confidence"]),
                "true_mroas": m,
                "oracle_change_pct": float(
                    oracle.channels.set_index("channel").loc[channel, "spend_change_pct"]
                ),
                "wrong_direction": bool(wrong),
                "missed": bool(missed),
                "wrong_and_confident": bool(wrong and float(row["confidence"]) >= confident),
            }
        )
    return {
        "plan": mode,
        "target_roas": target,
        "horizon_weeks": horizon,
        "value": result["value"],
        "revenue_change": result["revenue_change"],
        "oracle_value": float(oracle.value_draws[0]),
        "oracle_revenue_change": float(oracle.revenue_change_draws[0]),
        "channels": channels,
    }
