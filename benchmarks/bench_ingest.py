"""Raw-load benchmark: landing zone -> raw.* on a simulated world (rows/s per source), and
the cost of a no-op rerun (every file already in the ledger).

Run: ``.venv/bin/python benchmarks/bench_ingest.py [--scale full]``
Writes benchmarks/results/ingest.json.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import duckdb

from benchmarks._common import Timer, write_result
from triangulate import ingest
from triangulate.simulator import simulate_world


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="full")
    parser.add_argument("--world", type=Path, help="reuse an existing simulated world directory")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    try:
        world = args.world or tmp / "world"
        if not args.world:
            simulate_world(world, scale=args.scale, seed=42)
        per_source = []
        conn = duckdb.connect(str(tmp / "warehouse.duckdb"))
        with Timer() as total:
            for source in ingest.SOURCES:
                with Timer() as t:
                    r = ingest.load_source(conn, source, world / "landing")
                r.raise_for_errors()
                per_source.append({
                    "source": source.name, "files": len(r.files_loaded), "rows": r.rows_loaded,
                    "seconds": round(t.seconds, 2), "rows_per_second": round(r.rows_loaded / t.seconds) if t.seconds else None,
                })  # fmt: skip
        with Timer() as rerun:
            again = ingest.load_all(conn, world / "landing")
        conn.close()
        rows = sum(s["rows"] for s in per_source)
        write_result("ingest", {
            "scale": args.scale, "total_rows": rows, "total_seconds": round(total.seconds, 2),
            "rows_per_second": round(rows / total.seconds), "noop_rerun_seconds": round(rerun.seconds, 2),
            "noop_rerun_rows": sum(r.rows_loaded for r in again.values()), "per_source": per_source,
            "warehouse_bytes": (tmp / "warehouse.duckdb").stat().st_size,
        })  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
