"""The layers' direction, enforced (pyproject's ``[tool.importlinter]``): the ``triangulate``
library never imports Dagster or ``dagster_project``, the receiver never imports the
warehouse, and only the warehouse seam (``triangulate.warehouse``) imports an engine. Run
by import-linter, which reads every import statement, lazy ones included."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )


def test_the_project_keeps_its_import_contracts() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_a_library_module_importing_dagster_project_breaks_the_contract(tmp_path: Path) -> None:
    """The same contracts on a copy of the layout with one lazy upward import: reported."""
    (tmp_path / "triangulate" / "receiver").mkdir(parents=True)
    (tmp_path / "dagster_project").mkdir()
    (tmp_path / "triangulate" / "__init__.py").write_text("")
    for module in ("warehouse", "ingest", "quality"):
        (tmp_path / "triangulate" / f"{module}.py").write_text("")
    (tmp_path / "triangulate" / "receiver" / "__init__.py").write_text(
        "def load():\n    from triangulate import warehouse\n    return warehouse\n"
    )
    (tmp_path / "triangulate" / "report.py").write_text(
        "def run():\n    import dagster_project.runner\n\n\ndef read():\n    import duckdb\n"
    )
    (tmp_path / "dagster_project" / "__init__.py").write_text("")
    (tmp_path / "dagster_project" / "runner.py").write_text("import triangulate\n")
    config = (ROOT / "pyproject.toml").read_text()
    section = config[config.index("[tool.importlinter]") :]
    (tmp_path / ".importlinter.toml").write_text(textwrap.dedent(section))
    result = _lint(tmp_path, ".importlinter.toml")
    assert result.returncode != 0
    assert "0 kept, 3 broken" in result.stdout, result.stdout
    assert "triangulate.report -> duckdb" in result.stdout
    assert "triangulate.report -> dagster_project.runner" in result.stdout
    assert "triangulate.receiver -> triangulate.warehouse" in result.stdout
