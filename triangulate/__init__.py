"""Triangulate: the measurement library (MTA, MMM, geo experiments, receiver, simulator,
report, warehouse access). It never imports Dagster or ``dagster_project``: the
orchestration lives in ``dagster_project/`` and reads this package, not the other way round
(``tests/test_import_contract.py``)."""
