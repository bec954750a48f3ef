#!/usr/bin/env python
"""Server load with the prediction store on SQLite and on PostgreSQL, with 1 and 2 server
worker processes: the same clients and figures as benchmarks/serve_load.py (images/s, p50/p99
per request, errors), and the store check (rows == accepted images after SIGTERM).

    python benchmarks/store_load.py [--run RUN] [--seconds 20] [--workers 1 2] [--postgres URL]

Without --postgres, a throwaway PostgreSQL server is started with .ci/postgres.sh (Debian's
package; installed when missing and run as root) and removed at the end; each measurement gets
a fresh database on it. Without --run, the quick-start digits model is trained first.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
SCRIPT = HERE.parent / ".ci" / "postgres.sh"
spec = importlib.util.spec_from_file_location("serve_load", HERE / "serve_load.py")
serve_load = importlib.util.module_from_spec(spec)
spec.loader.exec_module(serve_load)


def start_postgres(folder: Path) -> str:
    """A throwaway server in ``folder`` (user postgres must reach it); its URL."""
    subprocess.run(["bash", str(SCRIPT), "install"], check=True)
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    done = subprocess.run(
        ["bash", str(SCRIPT), "start", str(folder / "cluster")],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def new_database(url: str) -> str:
    name = f"load_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"


def count_rows(url: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("select count(*) from predictions")).scalar_one()
    engine.dispose()
    return int(rows)


def serve(args, model: Path, url: str, workers: int) -> dict:
    """scripts/serve.py with ``workers`` processes writing to ``url``; figures and the check."""
    cmd = [sys.executable, "scripts/serve.py", "--model", str(model), "--db", url]
    cmd += ["--workers", str(workers), "--log-level", "warning", "--threads", str(args.threads)]
    cmd += ["--max-batch", str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]
    result, code = serve_load.measure(args, cmd, "/ready")
    rows = count_rows(url)
    result.update(
        exit_code=code, store_rows=rows, store_rows_match=rows == result["accepted_total"]
    )
    return result


def arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", type=Path, help="a run with export/model.onnx (default: train one)")
    p.add_argument("--postgres", help="a PostgreSQL URL to use (default: start one)")
    p.add_argument("--workers", type=int, nargs="*", default=[1, 2], help="server processes")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=1, help="the server's --threads")
    p.add_argument("--max-batch", type=int, default=32)
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    args = p.parse_args()
    args.body, args.images_per_request = "json", 1  # as serve_load.py's default
    return args


def main() -> None:
    args = arguments()
    rows: dict[str, dict] = {}
    tmp = Path(tempfile.mkdtemp(prefix="mlcycle-store-load-"))
    tmp.chmod(0o755)
    postgres = args.postgres
    try:
        run = args.run or serve_load.quickstart_run(tmp)
        model = run / "export" / "model.onnx"
        postgres = postgres or start_postgres(tmp / "pg")
        for workers in args.workers:
            sqlite = f"sqlite:///{tmp / f'sqlite{workers}.db'}"
            rows[f"sqlite {workers} worker(s)"] = serve(args, model, sqlite, workers)
            pg = new_database(postgres)
            rows[f"postgresql {workers} worker(s)"] = serve(args, model, pg, workers)
    finally:
        if not args.postgres and (tmp / "pg" / "cluster").is_dir():
            subprocess.run(["bash", str(SCRIPT), "stop", str(tmp / "pg" / "cluster")])
        shutil.rmtree(tmp, ignore_errors=True)
    serve_load.print_table(rows)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
