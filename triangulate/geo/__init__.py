"""Geo experiments: estimators, honest intervals, design, registry and calibration.

Modules (pure Python: numpy, scipy, pandas; never dagster):

* ``panel``: the long ``date, geo, value`` panel and its checks;
* ``synthetic_control``: simplex weights, synthetic control and DiD fits, conformal tests;
* ``analysis``: one experiment in, ``measurement.geo_experiment_results`` rows out;
* ``design``: power / minimum detectable effect by simulation, market selection;
* ``registry``: one experiment entry or YAML file of ``landing/experiments/``, validated
  (which entry is current per id is dbt's ``stg_experiments__registry``);
* ``calibration``: pymc-marketing lift-test rows and MTA calibration factors;
* ``simulation``: synthetic panels and effect injection (tests, coverage, power);
* ``cli``: ``triangulate geo analyze`` and ``triangulate geo design``.

Nothing is imported here, so ``triangulate --help`` does not load numpy or pandas.
"""
