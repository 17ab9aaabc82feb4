"""One seed, one machine, one input: one MMM fit (issue 23).

The fit runs twice in two fresh processes sharing a PyTensor compile directory that starts
empty: the first process compiles the model's numba code from scratch, the second loads it
from the cache. With numba's fastmath on (PyTensor's default) the two gave different draws
and diagnostics on the same seed; ``model.reproducible_compilation`` turns it off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

FIT = """
import hashlib, json, sys
import numpy as np
from triangulate.mmm.config import load_config
from triangulate.mmm.diagnostics import convergence
from triangulate.mmm.model import fit_mmm, prepare_weekly
from triangulate.mmm.synthetic import synthetic_weekly

weekly, _ = synthetic_weekly(n_weeks=40, n_channels=2, seed=3, l_max=2, noise=0.02)
config = load_config(
    channels=["ch1", "ch2"], controls=[],
    model={"l_max": 2, "yearly_seasonality": 1, "trend": False},
    sampler={"chains": 2, "draws": 100, "tune": 100, "seed": 5, "cores": 2},
)
fitted = fit_mmm(config, prepare_weekly(weekly, config), prior_predictive=False)
digest = hashlib.sha256()
posterior = fitted.mmm.idata.posterior
for name in sorted(posterior.data_vars):
    digest.update(np.ascontiguousarray(posterior[name].values).tobytes())
print(json.dumps({"posterior_sha256": digest.hexdigest(), **convergence(fitted)}))
"""


def _fit_in_fresh_process(compiledir) -> dict:
    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={compiledir}"}
    done = subprocess.run(
        [sys.executable, "-c", FIT], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_same_seed_gives_the_same_fit_in_two_processes(tmp_path):
    cold = _fit_in_fresh_process(tmp_path / "pytensor")  # compiles into the empty cache
    warm = _fit_in_fresh_process(tmp_path / "pytensor")  # loads the compiled code
    assert warm == cold  # bitwise the same draws, so the same R-hat, ESS and divergences


def test_geo_rows_sum_the_same_in_any_order():
    """The national sum of a geo table does not depend on the order of its rows (a
    warehouse query without ORDER BY returns them in any order): a float sum does, and
    NUTS turns a last-bit change in the data into another fit."""
    from triangulate.mmm.config import load_config
    from triangulate.mmm.model import prepare_weekly

    rng = np.random.default_rng(0)
    weeks = pd.date_range("2024-01-01", periods=30, freq="W-MON")
    geos = [f"G{g:02d}" for g in range(40)]
    frame = pd.DataFrame(
        {
            "week_start": np.repeat(weeks, len(geos)),
            "geo": np.tile(geos, len(weeks)),
            "net_revenue": rng.lognormal(8, 2, len(weeks) * len(geos)) * np.pi,
            "spend_tv": rng.lognormal(5, 2, len(weeks) * len(geos)) / 3,
            "control_price": rng.uniform(0.9, 1.1, len(weeks) * len(geos)),
        }
    )
    config = load_config(channels=["tv"], controls=["price"])
    first = prepare_weekly(frame, config).frame
    for seed in range(5):
        shuffled = prepare_weekly(frame.sample(frac=1, random_state=seed), config).frame
        pd.testing.assert_frame_equal(shuffled, first, check_exact=True)
