"""The channel registry (``dbt_project/dbt_project.yml`` ``vars.channel_registry``) is the
one owner of the channel list: dbt, the GX suites, the MMM and the decision engine read it,
the channel rules and the mart contract are checked against it."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.dbt_fixtures import world_tools
from triangulate import channels, quality
from triangulate.channels import Channel, ChannelRegistryError
from triangulate.mmm.config import DEFAULT_CONFIG_PATH, load_config
from triangulate.paths import DBT_PROJECT_DIR

RULES = DBT_PROJECT_DIR / "seeds" / "channel_rules.csv"
MMM_INPUT_YML = DBT_PROJECT_DIR / "models" / "marts" / "mmm_weekly_input.yml"


def _registry_entries(path: Path = channels.REGISTRY_FILE) -> list[dict]:
    return yaml.safe_load(path.read_text())["vars"]["channel_registry"]


def _with_extra_channel(tmp_path: Path, entry: str) -> Path:
    """A copy of dbt_project.yml whose registry has one more entry (a flow-style mapping)."""
    text = channels.REGISTRY_FILE.read_text()
    anchor = "  channel_registry:\n"
    assert text.count(anchor) == 1
    path = tmp_path / "dbt_project.yml"
    path.write_text(text.replace(anchor, f"{anchor}    - {entry}\n"))
    return path


# --------------------------------------------------------------------------- the registry
def test_the_registry_names_paid_and_click_tracked_channels() -> None:
    registered = channels.load_channels()
    assert [c.name for c in registered] == [e["name"] for e in _registry_entries()]
    assert Channel("tv", paid=True, click_tracked=False) in registered
    assert Channel("direct", paid=False, click_tracked=True) in registered
    assert channels.paid_channels() == [c.name for c in registered if c.paid]
    assert {"email", "organic", "direct"}.isdisjoint(channels.paid_channels())
    assert not channels.is_click_tracked("tv") and not channels.is_click_tracked("podcast")
    assert channels.is_click_tracked("meta")
    # referral is not a channel: the rules send referred sessions to direct (rule 199)
    assert "referral" not in channels.channel_names()
    with pytest.raises(ChannelRegistryError, match="unknown channel 'referral'"):
        channels.is_click_tracked("referral")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{name: meta, paid: true, click_tracked: true}", "listed twice"),
        ("{name: Snap Chat, paid: true, click_tracked: true}", "lower-case identifier"),
        ("{name: unknown, paid: false, click_tracked: true}", "not 'unknown'"),
        ("{name: snapchat, paid: yes please, click_tracked: true}", "true or false"),
        ("{name: snapchat, paid: true}", "exactly the keys"),
    ],
)
def test_a_malformed_registry_is_named(tmp_path: Path, entry: str, message: str) -> None:
    with pytest.raises(ChannelRegistryError, match=message) as info:
        channels.load_channels(_with_extra_channel(tmp_path, entry))
    assert re.search(r"vars\.channel_registry entry \d+ \(", str(info.value))


def test_a_channel_added_to_the_registry_reaches_gx_and_the_mmm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One edit, seen everywhere: the registry is read at run time, not copied."""
    extra = _with_extra_channel(tmp_path, "{name: snapchat, paid: true, click_tracked: true}")
    monkeypatch.setattr(channels, "REGISTRY_FILE", extra)
    assert "snapchat" in channels.paid_channels()
    assert "snapchat" in quality.load_parameters()["known_channels"]
    assert "snapchat" in load_config().channels
    assert channels.is_click_tracked("snapchat")


# --------------------------------------------------------------------------- its readers
def test_gx_knows_exactly_the_registered_channels() -> None:
    known = quality.load_parameters()["known_channels"]
    assert known == [e["name"] for e in _registry_entries()]
    assert "known_channels" not in yaml.safe_load(quality.PARAMETERS_FILE.read_text())["parameters"]


def test_a_known_channels_list_in_quality_yaml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "quality.yaml"
    path.write_text("parameters:\n  known_channels: [meta, referral]\n")
    with pytest.raises(ValueError, match="channel registry"):
        quality.load_parameters(path)


def test_the_mmm_fits_the_paid_channels_by_default() -> None:
    assert "channels" not in yaml.safe_load(DEFAULT_CONFIG_PATH.read_text())
    assert load_config().channels == tuple(channels.paid_channels())
    assert load_config(channels=["tv"]).channels == ("tv",)  # a subset, or bring-your-own data


def test_every_rule_maps_to_a_registered_channel_and_every_channel_has_a_rule() -> None:
    rules = pd.read_csv(RULES)
    names = set(channels.channel_names())
    assert set(rules["channel"]) <= names, sorted(set(rules["channel"]) - names)
    assert names <= set(rules["channel"]), (
        f"no rule produces {sorted(names - set(rules['channel']))}"
    )


def test_mmm_weekly_input_contract_has_one_spend_column_per_paid_channel() -> None:
    """The contract's columns cannot be generated by dbt: checked here, with the fix named."""
    model = yaml.safe_load(MMM_INPUT_YML.read_text())["models"][0]
    listed = [c["name"] for c in model["columns"] if c["name"].startswith("spend_")]
    wanted = [f"spend_{name}" for name in channels.paid_channels()]
    missing = [c for c in wanted if c not in listed]
    block = "".join(
        f"      - name: {c}\n        data_type: numeric(28, 6)\n"
        f"        description: {c[len('spend_') :]} spend (reporting currency), 0 when none.\n"
        "        data_tests: [not_null]\n"
        for c in missing
    )
    assert not missing, f"add to the columns of {MMM_INPUT_YML}:\n{block}"
    assert listed == wanted, f"{MMM_INPUT_YML}: spend columns {listed}, paid channels {wanted}"


def test_dbt_reads_channels_only_through_the_registry_macros() -> None:
    """No channel list in dbt but the registry: every accepted_values on a channel column
    is channel_names(), and the retired vars are gone."""
    checked = 0
    properties_files = [
        *sorted(DBT_PROJECT_DIR.glob("models/**/*.yml")),
        RULES.with_name("_seeds.yml"),
    ]
    for path in properties_files:
        properties = yaml.safe_load(path.read_text()) or {}
        for node in [*properties.get("models", []), *properties.get("seeds", [])]:
            for column in node.get("columns", []):
                if column["name"] != "channel":
                    continue
                for test in column.get("data_tests", []):
                    if isinstance(test, dict) and "accepted_values" in test:
                        values = test["accepted_values"]["arguments"]["values"]
                        assert values == "{{ channel_names() }}", (path, node["name"])
                        checked += 1
    assert checked >= 6
    retired = re.compile(r"var\(\s*['\"](channels|mmm_paid_channels)['\"]")
    for folder in ("models", "macros", "tests", "seeds"):
        for path in (DBT_PROJECT_DIR / folder).rglob("*"):
            if path.suffix in (".sql", ".yml"):
                assert not retired.search(path.read_text()), path


# --------------------------------------------------------------------------- dbt, compiled
def _compile(home: Path, registry: list[dict] | None = None) -> Path:
    """Compile the channel-dependent models and their tests; returns the compiled folder."""
    args = ["compile", "--select", "fct_touchpoints", "mmm_weekly_input"]
    if registry is not None:
        args += ["--vars", yaml.safe_dump({"channel_registry": registry}, default_flow_style=True)]
    world_tools.run_dbt(args, home)
    return home / "dbt_run" / "target" / "compiled" / "triangulate" / "models" / "marts"


def _accepted_channels(compiled: Path) -> set[str]:
    (sql,) = (compiled / "fct_touchpoints.yml").glob("accepted_values_fct_touchpoints_channel*.sql")
    values = sql.read_text().split("not in (", 1)[1].split(")", 1)[0]
    return set(re.findall(r"'([^']*)'", values))


def _spend_columns(compiled: Path) -> list[str]:
    final = (compiled / "mmm_weekly_input.sql").read_text().split("final as (", 1)[1]
    return re.findall(r"as (spend_\w+)", final)


@pytest.mark.slow
def test_gx_and_dbt_accept_the_same_channels(tmp_path: Path) -> None:
    """What dbt's compiled accepted_values test allows is what the GX gate knows."""
    compiled = _compile(tmp_path)
    assert _accepted_channels(compiled) == set(quality.load_parameters()["known_channels"])
    assert _spend_columns(compiled) == [f"spend_{c}" for c in channels.paid_channels()]


@pytest.mark.slow
def test_a_channel_added_to_the_registry_reaches_dbt(tmp_path: Path) -> None:
    registry = [*_registry_entries(), {"name": "snapchat", "paid": True, "click_tracked": True}]
    compiled = _compile(tmp_path, registry)
    assert "snapchat" in _accepted_channels(compiled)
    assert _spend_columns(compiled)[-1] == "spend_snapchat"
    every_paid = next(
        (compiled / "mmm_weekly_input.yml").glob("every_paid_channel_has_a_colum*.sql")
    )
    assert "'snapchat'" in every_paid.read_text()
