"""The repository stands alone: a clone anywhere, with nothing beside it, has everything
its code, tests and docs read or cite."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(
    "|".join(
        [
            re.escape("..") + r"/shared\b",  # the design notes beside a developer's clone
            r"/work/" + "(main|shared)",  # absolute paths of a developer's machine
            r"parents\[2\]",  # the folder above the repository
        ]
    )
)
DOC_CITATION = re.compile(r"\bdocs/([A-Za-z0-9_]+\.md)\b")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    files = []
    for name in names:
        path = ROOT / name
        if path.suffix in {".png", ".lock"} or not path.is_file():
            continue
        try:
            files.append((path, path.read_text(encoding="utf-8")))
        except UnicodeDecodeError:
            continue
    return files


def test_nothing_reads_or_cites_a_path_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{text[: m.start()].count(chr(10)) + 1}: {m.group(0)}"
        for path, text in tracked_text_files()
        if path.name != Path(__file__).name
        for m in OUTSIDE.finditer(text)
    ]
    assert not offenders, "\n".join(offenders)


def test_every_cited_doc_exists() -> None:
    missing = sorted(
        {
            f"{path.relative_to(ROOT)} cites docs/{m.group(1)}"
            for path, text in tracked_text_files()
            for m in DOC_CITATION.finditer(text)
            if not (ROOT / "docs" / m.group(1)).exists()
        }
    )
    assert not missing, "\n".join(missing)
