"""The Dagster UI as an analytics engineer sees it: the real webserver, a real browser.

One module fixture materializes the ``ingest`` group in-process against the instance in
``$TRIANGULATE_HOME/dagster`` (so the runs are in the UI's history), starts
``dagster-webserver`` on loopback as a subprocess and opens headless Chromium on it.
The checks compare what the pages render with what the warehouse and the landing zone
hold: the asset keys and groups of the definitions, each raw table's materialization
status, and ``raw.stripe_events``' row count and load metadata.

``TRIANGULATE_SCREENSHOTS=1`` copies the screenshots to ``docs/images/``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from dagster_project.instance import ensure_dagster_home
from tests import STAGE_GROUPS
from tests.browser import headless_chromium, save_screenshot
from triangulate.paths import PROJECT_ROOT, landing_dir, warehouse_path

pytestmark = pytest.mark.slow

LOCATION = "dagster_project.definitions"
SERVER_START_TIMEOUT_S = 120
PAGE_TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1400, "height": 860}
LOCAL_STORAGE = {
    # the "Join the Dagster community" dialog Dagster shows on loopback, already dismissed
    "communityNux": '"1"',
    "dagster-nav-collapsed": "false",
}


@dataclass(frozen=True)
class DagsterUI:
    base_url: str
    home: Path
    screenshots: Path
    raw_row_counts: dict[str, int]
    """Rows per raw table (``raw.stripe_events`` -> 74623), read from the warehouse."""
    stripe_files: int
    """Sealed Stripe files in the landing zone: what the first load must report as files_loaded."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(errors="replace") if log.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def wait_for_server(url: str, process: subprocess.Popen, log: Path) -> None:
    """Poll ``/server_info`` until it answers, the process dies, or the time is up."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster-webserver exited with {process.returncode}:\n{log_tail(log)}")
        try:
            if httpx.get(f"{url}/server_info", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail(
        f"dagster-webserver did not answer within {SERVER_START_TIMEOUT_S} s:\n{log_tail(log)}"
    )


LOCATION_STATUS_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries { name
    locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def code_location_error(url: str) -> str | None:
    """The error that kept the definitions from loading, or None when they loaded."""
    answer = httpx.post(f"{url}/graphql", json={"query": LOCATION_STATUS_QUERY}, timeout=30).json()
    entries = answer["data"]["workspaceOrError"].get("locationEntries", [])
    if not entries:
        return f"no code location in the workspace: {answer}"
    for entry in entries:
        loaded = entry["locationOrLoadError"] or {}
        if loaded.get("__typename") != "RepositoryLocation":
            return f"{entry['name']}: {loaded.get('message', loaded)}"
    return None


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the webserver's process group (it runs a code server child), then SIGKILL."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def dagster_ui(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterUI]:
    import duckdb

    from dagster_project.runner import materialize_selection
    from triangulate import ingest

    root = tmp_path_factory.mktemp("dagster_ui")
    home = root / "home"
    home.mkdir()
    shutil.copytree(small_world / "landing", home / "landing")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TRIANGULATE_HOME", str(home))
        mp.setenv("DAGSTER_HOME", str(ensure_dagster_home(home)))
        messages: list[str] = []
        assert materialize_selection("group:ingest", echo=messages.append), "\n".join(messages)

        with duckdb.connect(str(warehouse_path(home)), read_only=True) as conn:
            counts = {
                s.table: conn.execute(f"select count(*) from {s.table}").fetchall()[0][0]
                for s in ingest.SOURCES
            }
        stripe = ingest.SOURCES_BY_NAME["stripe"]
        stripe_files = len(ingest.sealed_files(stripe, landing_dir(home)))

        venv_bin = Path(sys.executable).parent
        webserver = venv_bin / "dagster-webserver"
        assert webserver.exists(), f"{webserver} not found: run `uv sync` first"
        port = free_port()
        env = dict(os.environ)
        # the definitions build a DbtCliResource, which looks for `dbt` on PATH (as `uv run` sets it)
        env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
        log = root / "webserver.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [str(webserver), "-m", LOCATION, "-h", "127.0.0.1", "-p", str(port)],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_server(url, process, log)
            error = code_location_error(url)
            assert error is None, (
                f"the definitions did not load in the webserver: {error}\n{log_tail(log)}"
            )
            yield DagsterUI(url, home, root, counts, stripe_files)
        finally:
            stop(process)


@pytest.fixture(scope="module")
def page(dagster_ui: DagsterUI):
    script = "".join(
        f"window.localStorage.setItem({k!r}, {v!r});" for k, v in LOCAL_STORAGE.items()
    )
    with headless_chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script(script)
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        tab = context.new_page()
        yield tab
        context.close()


def test_lineage_shows_every_stage_group(dagster_ui: DagsterUI, page) -> None:
    page.goto(f"{dagster_ui.base_url}/asset-groups")
    graph = page.locator(GRAPH_SVG)
    for group in STAGE_GROUPS:
        # each stage group is a (collapsed) node of the graph
        graph.get_by_text(group, exact=True).first.wait_for()
    assert graph.locator("foreignObject.group").count() == len(STAGE_GROUPS)
    assert not page.get_by_text("Empty graph").is_visible()
    frame_graph_for_screenshot(page)
    save_screenshot(page, "ui_asset_graph.png", dagster_ui.screenshots)


GRAPH_SVG = "svg[class*='AssetGraphExplorer_svgContainer']"


def graph_nodes_box(page) -> dict[str, float] | None:
    """The smallest box around the graph's group nodes, in page pixels."""
    boxes = [n.bounding_box() for n in page.locator(f"{GRAPH_SVG} foreignObject.group").all()]
    boxes = [b for b in boxes if b]
    if not boxes:
        return None
    left, top = min(b["x"] for b in boxes), min(b["y"] for b in boxes)
    right = max(b["x"] + b["width"] for b in boxes)
    bottom = max(b["y"] + b["height"] for b in boxes)
    return {"x": left, "y": top, "width": right - left, "height": bottom - top}


def frame_graph_for_screenshot(page) -> None:
    """Give the stage graph the whole window, zoom it to fill ~80 % of the canvas and centre it.

    Cosmetic only (the README picture); the checks are made before.
    """
    page.get_by_text("Hide navigation", exact=True).click()
    page.locator("button:has([aria-label='panel_show_right'])").click()  # the group tree
    canvas = page.locator(GRAPH_SVG).locator("xpath=../../../..").bounding_box()
    toolbar = page.get_by_text("Materialize all").bounding_box()
    if not (canvas and toolbar):
        return
    for _ in range(6):  # each step zooms by a fixed factor (about 1.1x)
        graph = graph_nodes_box(page)
        if graph is None or graph["width"] * 1.15 > 0.8 * canvas["width"]:
            break
        page.locator("button:has([aria-label='zoom_in'])").click()
        page.wait_for_timeout(400)  # zoom animates; no DOM state marks its end
    graph = graph_nodes_box(page)
    if graph is None:
        return
    canvas_top = toolbar["y"] + toolbar["height"]
    dx = canvas["x"] + canvas["width"] / 2 - (graph["x"] + graph["width"] / 2)
    dy = (canvas_top + canvas["y"] + canvas["height"]) / 2 - (graph["y"] + graph["height"] / 2)
    start_x, start_y = (
        canvas["x"] + canvas["width"] / 2,
        canvas_top + 20,
    )  # empty canvas above the nodes
    page.mouse.move(start_x, start_y)
    page.mouse.down()
    page.mouse.move(start_x + dx, start_y + dy, steps=10)
    page.mouse.up()
    page.wait_for_timeout(300)


def test_ingest_group_lists_every_raw_table_as_materialized(dagster_ui: DagsterUI, page) -> None:
    page.set_viewport_size({"width": VIEWPORT["width"], "height": 1100})
    page.goto(f"{dagster_ui.base_url}/locations/{LOCATION}/asset-groups/ingest/list")
    # the asset list is a virtualized grid of <div>s (no ARIA rows): rows by their CSS module class
    rows = page.locator("[class*='VirtualizedTable_row']")
    for table in dagster_ui.raw_row_counts:
        schema, name = table.split(".")
        row = rows.filter(has=page.get_by_text(f"{schema} / {name}", exact=True))
        # the status cell says "Loading..." until its own query returns
        expect(row.first).to_contain_text("Materialized", timeout=PAGE_TIMEOUT_MS)
        expect(row.first).to_contain_text("ingest", timeout=PAGE_TIMEOUT_MS)
    assert page.get_by_text("Never materialized").count() == 0
    save_screenshot(page, "ui_ingest_assets.png", dagster_ui.screenshots)
    page.set_viewport_size(VIEWPORT)


def test_materialized_asset_page_shows_its_metadata(dagster_ui: DagsterUI, page) -> None:
    page.goto(f"{dagster_ui.base_url}/assets/raw/stripe_events")
    rows = dagster_ui.raw_row_counts["raw.stripe_events"]
    assert rows > 0

    def metadata_value(key: str) -> str:
        row = page.get_by_role("row").filter(has=page.get_by_text(key, exact=True))
        row.first.wait_for()
        return row.first.locator("td").last.inner_text().strip()

    # first load of a fresh warehouse: every row and every sealed file was loaded by this run
    assert metadata_value("rows_loaded") == str(rows)
    assert metadata_value("files_loaded") == str(dagster_ui.stripe_files)
    assert metadata_value("files_already_loaded") == "0"
    # dagster/row_count is shown, thousands-separated, as the status panel's "Row count"
    page.get_by_text("Row count", exact=True).wait_for()
    page.get_by_text(f"{rows:,}", exact=True).first.wait_for()
    # the Definition panel: group, owner, kind, and the automation that runs this asset
    text = page.locator("body").inner_text()
    for expected in ("data-engineering", "DuckDB", "landing_zone_sensor", "ingest_job"):
        assert expected in text, f"{expected!r} missing from the asset page"
    assert page.get_by_text("Stripe webhook deliveries as received").first.is_visible()
    save_screenshot(page, "ui_asset_metadata.png", dagster_ui.screenshots)
