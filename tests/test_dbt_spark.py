"""Portability: the whole dbt project on the local Spark warehouse (dbt-spark ``session``).

- The ``spark`` output of dbt_project/profiles.yml must start Spark with exactly the
  settings of :func:`triangulate.warehouse.spark_settings.spark_conf`, or dbt would open
  another (empty) catalog than the pipeline's Python steps: rendered and compared here
  (fast, no Spark).
- ``dbt build --target spark`` itself runs in tests/test_spark_pipeline.py: the whole
  pipeline on the small world on each engine, the marts compared.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from tests.dbt_fixtures import ROOT

PROFILES = ROOT / "dbt_project" / "profiles.yml"


def _rendered_spark_output(monkeypatch: pytest.MonkeyPatch, env: dict[str, str | None]) -> dict:
    """The profile's ``spark`` output as dbt renders it (dbt's own env_var) under ``env``."""
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    set_invocation_context(dict(os.environ))  # what dbt's env_var reads
    output = yaml.safe_load(PROFILES.read_text())["triangulate"]["outputs"]["spark"]
    return ProfileRenderer({}).render_data(output)


@pytest.mark.parametrize("partitions", [None, "2"])
def test_spark_profile_uses_the_warehouse_spark_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, partitions: str | None
) -> None:
    from triangulate.warehouse.spark_settings import spark_conf

    home = tmp_path / "home"
    env = {"TRIANGULATE_HOME": str(home), "TRIANGULATE_SPARK_PARTITIONS": partitions}
    output = _rendered_spark_output(monkeypatch, env)
    assert output["type"] == "spark" and output["method"] == "session"
    params = {k: str(v) for k, v in output["server_side_parameters"].items()}
    assert params == spark_conf(home)


def test_spark_profile_default_home_is_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without TRIANGULATE_HOME both sides fall back to ./data (triangulate.paths)."""
    from triangulate.warehouse.spark_settings import spark_conf

    output = _rendered_spark_output(
        monkeypatch, {"TRIANGULATE_HOME": None, "TRIANGULATE_SPARK_PARTITIONS": None}
    )
    params = {k: str(v) for k, v in output["server_side_parameters"].items()}
    assert params == spark_conf(Path("data"))
