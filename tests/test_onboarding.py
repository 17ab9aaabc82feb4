"""Onboarding a brand from the docs alone (issue 23).

A brand unlike the demo (tests/other_brand.py: five regions with text keys and their own
platform geo names, Meta, Google search, TikTok and daily TV in EUR, campaign names the
shipped rules do not know, one ``heatwave`` control, a conversions holdout) is fed in only
as docs/producers.md describes:

* signed Stripe deliveries and Segment messages POSTed to the real receiver (uvicorn on
  loopback), with the secrets the doc names;
* ad exports, the offline CSV, the control, the experiment YAML and the reference files
  written to ``landing/``;
* its campaign -> channel rules added to ``dbt_project/seeds/channel_rules.csv`` of a
  checkout (a copy of this repository's code: the test never edits the repository);
* the MMM's channels listed in an mmm.yaml named by ``TRIANGULATE_MMM_CONFIG`` (fast
  sampler settings of tests/fixtures/mmm_fast.yaml).

Then ``triangulate run`` from that checkout runs the whole pipeline green, and every order
and every dollar of spend is in the marts, the MMM is published and the budget plan has
one row per channel.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import httpx
import pytest
import uvicorn
import yaml

from tests import other_brand
from tests.other_brand import CHANNELS, SEGMENT_KEY, STRIPE_SECRET, Brand
from triangulate.paths import PROJECT_ROOT
from triangulate.receiver.app import create_app
from triangulate.receiver.settings import ReceiverSettings

pytestmark = pytest.mark.slow

FAST_MMM = Path(__file__).parent / "fixtures" / "mmm_fast.yaml"
CODE = ("triangulate", "dagster_project", "dbt_project", "expectations", "pyproject.toml")
"""What a checkout needs to run the pipeline (tests, docs and benchmarks stay behind)."""


def _checkout(root: Path) -> Path:
    """A copy of this repository's code, as a user's checkout; built artifacts left out."""
    ignore = shutil.ignore_patterns("target", "logs", "__pycache__", "*.pyc", ".user.yml")
    for name in CODE:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=ignore)
        else:
            shutil.copy(source, root / name)
    return root


class _Receiver:
    """``triangulate serve``'s app under uvicorn on a loopback port, in a thread."""

    def __init__(self, home: Path) -> None:
        settings = ReceiverSettings(
            stripe_webhook_secrets=(STRIPE_SECRET,),
            shopify_webhook_secret="",  # a Stripe-only shop: that route answers 503
            segment_write_key=SEGMENT_KEY,
            home=home,
        )
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(settings), log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> _Receiver:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "receiver did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True  # shutting down seals the open landing files
        self.thread.join(timeout=30)
        self.sock.close()


def _post_everything(brand: Brand, url: str) -> dict[str, int]:
    sent = {"stripe": 0, "segment_batches": 0}
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/healthz").status_code == 200
        for event in brand.stripe_events():
            body = json.dumps(event).encode()
            signature = other_brand.stripe_signature_header(STRIPE_SECRET, body, int(time.time()))
            response = client.post(
                "/webhooks/stripe",
                content=body,
                headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            )
            assert response.status_code == 200, response.text
            sent["stripe"] += 1
        messages = brand.segment_messages()
        for i in range(0, len(messages), 200):
            batch = {"batch": messages[i : i + 200]}
            if (i // 200) % 2:  # every other batch authenticates with writeKey in the body
                response = client.post("/v1/batch", json={**batch, "writeKey": SEGMENT_KEY})
            else:
                auth = other_brand.basic_auth(SEGMENT_KEY)
                response = client.post("/v1/batch", json=batch, headers={"Authorization": auth})
            assert response.status_code == 200, response.text
            sent["segment_batches"] += 1
        # the doc's other promises: a bad signature and a route without its secret
        bad = client.post(
            "/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=00"}
        )
        assert bad.status_code == 400
        assert client.post("/webhooks/shopify", content=b"{}").status_code == 503
    return sent


@pytest.fixture(scope="module")
def onboarded(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("onboarding")
    brand = Brand()
    home = root / "home"
    (home / "landing").mkdir(parents=True)
    timings: dict[str, float] = {}

    started = time.monotonic()
    with _Receiver(home) as receiver:
        sent = _post_everything(brand, receiver.url)
    timings["post"] = time.monotonic() - started
    brand.write_files(home / "landing")

    checkout = _checkout(root / "checkout")
    rules = checkout / "dbt_project" / "seeds" / "channel_rules.csv"
    rules.write_text(rules.read_text() + other_brand.CHANNEL_RULES)
    mmm = yaml.safe_load(FAST_MMM.read_text())
    mmm["channels"] = CHANNELS  # the channels this brand buys
    mmm.pop("controls", None)  # every control landed: heatwave
    (root / "mmm.yaml").write_text(yaml.safe_dump(mmm))

    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "TRIANGULATE_CURRENCY")}
    env |= {
        "PYTHONPATH": str(checkout),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "TRIANGULATE_HOME": str(home),
        "TRIANGULATE_MMM_CONFIG": str(root / "mmm.yaml"),
    }
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-c", "from dagster_project.cli import app; app()", "run"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    timings["run"] = time.monotonic() - started
    log = run.stdout + run.stderr
    (root / "run.log").write_text(log)
    said = [line for line in log.splitlines() if " - dagster - " not in line]  # not the log
    assert run.returncode == 0, "\n".join(said[-60:])
    print(f"onboarding: posted {sent} in {timings['post']:.0f} s, run {timings['run']:.0f} s")
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        yield brand, conn


def _one(conn, sql: str):
    return conn.execute(sql).fetchone()[0]


def test_every_order_and_its_money_is_in_the_marts(onboarded) -> None:
    brand, conn = onboarded
    expected = brand.expected()
    orders = conn.execute("select order_id, geo from marts.fct_orders order by order_id").fetchall()
    assert [o for o, _ in orders] == sorted(o.order_id for o in brand.orders)
    assert dict(orders) == {o.order_id: o.geo for o in brand.orders}  # postal code -> region
    gross, net = conn.execute(
        "select sum(gross_revenue), sum(net_revenue) from marts.fct_orders"
    ).fetchone()
    assert float(gross) == pytest.approx(expected["gross_revenue"], abs=0.05)
    assert float(net) == pytest.approx(expected["net_revenue"], abs=0.05)
    weekly = _one(conn, "select sum(net_revenue) from marts.mmm_weekly_input")
    assert float(weekly) == pytest.approx(expected["net_revenue"], abs=0.05)


def test_orders_are_linked_to_people_as_the_doc_says(onboarded) -> None:
    brand, conn = onboarded
    methods = dict(
        conn.execute(
            "select match_method, count(*) from intermediate.int_matched_order_persons "
            "where person_key is not null group by 1"
        ).fetchall()
    )
    tracked = [o for o in brand.orders if o.tracked]
    assert methods == {
        "order_event": sum(o.link == "event" for o in tracked),
        "email": sum(o.link == "email" for o in tracked),
    }


def test_every_dollar_of_spend_is_in_the_marts_under_its_channel(onboarded) -> None:
    brand, conn = onboarded
    expected = brand.expected()["spend"]
    spend = dict(
        conn.execute(
            "select channel, sum(spend) from marts.fct_daily_channel_spend group by 1"
        ).fetchall()
    )
    assert set(spend) == set(CHANNELS)  # every campaign name mapped through the rules
    for channel in CHANNELS:
        assert float(spend[channel]) == pytest.approx(expected[channel], abs=0.05), channel
    geos = {
        g
        for (g,) in conn.execute(
            "select distinct geo from marts.fct_daily_channel_spend"
        ).fetchall()
    }
    assert geos == {g[0] for g in other_brand.GEOS}  # every platform geo name matched
    columns = [
        c
        for (c,) in conn.execute(
            "select column_name from (describe marts.mmm_weekly_input)"
        ).fetchall()
    ]
    assert [c for c in columns if c.startswith("control_")] == ["control_heatwave"]


def test_the_mmm_is_published_and_the_plan_has_one_row_per_channel(onboarded) -> None:
    from triangulate.warehouse import latest_published_mmm_run

    _, conn = onboarded
    run_id = latest_published_mmm_run(conn)
    assert run_id is not None
    summary = conn.execute(
        "select channel from measurement.mmm_channel_summary where run_id = ?", [run_id]
    ).fetchall()
    assert sorted(c for (c,) in summary) == sorted(CHANNELS)
    plan = conn.execute(
        "select channel from measurement.budget_plan where run_id = ?", [run_id]
    ).fetchall()
    assert sorted(c for (c,) in plan) == sorted(CHANNELS)
    experiments = conn.execute(
        "select distinct experiment_id from measurement.geo_experiment_results"
    ).fetchall()
    assert experiments == [("acme-meta-holdout",)]
