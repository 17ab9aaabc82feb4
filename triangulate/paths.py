"""Where Triangulate keeps its state: one data directory (docs/contracts.md §1).

Everything lives under ``$TRIANGULATE_HOME`` (default ``./data``)::

    landing/          append-only inputs
    warehouse.duckdb  the embedded warehouse (default dbt target)
    artifacts/        fitted models, reports, data docs, run logs

Functions, not module constants, so a test that sets ``TRIANGULATE_HOME`` after import
still gets its own directory. :func:`triangulate_home` is the one resolution of the data
directory: the pipeline hands its absolute path to every dbt command it runs
(``dagster_project.assets.transform.dbt_environment``), so dbt, which runs inside
``dbt_project/``, builds the warehouse Python opens.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"

LANDING_FOLDERS = {
    "stripe": "webhooks/stripe",
    "shopify": "webhooks/shopify",
    "events": "events",
    "meta": "ads/meta",
    "google_ads": "ads/google_ads",
    "tiktok": "ads/tiktok",
    "offline": "offline",
    "controls": "controls",
    "experiments": "experiments",
    "reference": "reference",
}
"""Landing-zone source name -> folder under ``landing/`` (docs/contracts.md §3)."""


def triangulate_home() -> Path:
    """The data directory: ``$TRIANGULATE_HOME`` or ``./data``, as an absolute path."""
    return Path(os.environ.get("TRIANGULATE_HOME", "data")).expanduser().resolve()


def landing_dir(home: Path | None = None) -> Path:
    return (home or triangulate_home()) / "landing"


def landing_folder(source: str, home: Path | None = None) -> Path:
    """Folder of one landing source, e.g. ``landing_folder("stripe")``."""
    try:
        return landing_dir(home) / LANDING_FOLDERS[source]
    except KeyError:
        known = ", ".join(sorted(LANDING_FOLDERS))
        raise ValueError(f"unknown landing source {source!r}; expected one of: {known}") from None


def warehouse_path(home: Path | None = None) -> Path:
    return (home or triangulate_home()) / "warehouse.duckdb"


def artifacts_dir(home: Path | None = None) -> Path:
    return (home or triangulate_home()) / "artifacts"


def ensure_home(home: Path | None = None) -> Path:
    """Create the data directory layout; fail clearly when it is not writable."""
    home = home or triangulate_home()
    for folder in (landing_dir(home), artifacts_dir(home)):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(
                f"cannot create {folder} (TRIANGULATE_HOME={home}): {exc.strerror}"
            ) from exc
    if not os.access(home, os.W_OK):
        raise PermissionError(f"data directory {home} is not writable (set TRIANGULATE_HOME)")
    return home
