#!/usr/bin/env python
"""compare.py on the digits locally and on a 2-node Ray cluster on loopback: the same
leaderboard, and the time.

    python benchmarks/compare_ray.py [--only NAMES] [--folds 3] [--node_cpus 1]

Starts a Ray head and one worker node (``ray start --block``, ``--node_cpus`` CPUs each) on
127.0.0.1, runs the comparison in a fresh folder with ``--executor local`` and then with
``--executor ray --address 127.0.0.1:PORT`` (one CPU per task), stops both nodes, and prints
each wall time, their ratio, and every candidate's mean score side by side (the largest
difference). On one machine the two nodes share its cores: the figure shows what Ray costs
and gains there; on real nodes each brings its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path

ONLY = "logistic,svc,knn,random_forest,small_cnn,logistic_on_cnn"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def cluster(cpus: int):
    """A Ray head and one worker node on loopback; its address; both stopped after."""
    ray = str(Path(sys.executable).with_name("ray"))
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--block", "--num-cpus", str(cpus), "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]  # fmt: skip
    head = ["--head", "--port", str(port), "--temp-dir", str(temp), "--include-dashboard=false",
            "--ray-client-server-port", str(free_port())]  # fmt: skip
    log = (temp / "nodes.log").open("w")
    procs = [subprocess.Popen([ray, "start", *head, *common], stdout=log, stderr=log)]
    try:
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            time.sleep(0.5)
        procs.append(subprocess.Popen([ray, "start", "--address", address, *common], stdout=log, stderr=log))  # fmt: skip
        wait_for_nodes(address, 2)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=60)


def wait_for_nodes(address: str, count: int) -> None:
    import ray

    ray.init(address=address, log_to_driver=False)
    try:
        while sum(n["Alive"] for n in ray.nodes()) < count:
            time.sleep(0.5)
    finally:
        ray.shutdown()


def compare(out: Path, args: argparse.Namespace, *options: str) -> tuple[float, dict]:
    from mlcycle.commands.compare import main

    argv = ["--config", args.config, "--folds", str(args.folds), "--only", args.only]
    clock = time.perf_counter()
    with contextlib.redirect_stdout(StringIO()):
        main([*argv, "--out", str(out), *options])
    summary = json.loads((out / "leaderboard.json").read_text())
    return time.perf_counter() - clock, {r["candidate"]: r["mean"] for r in summary["rows"]}


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/compare/digits.yaml")
    parser.add_argument("--only", default=ONLY, help="the candidates (comma-separated)")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--node_cpus", type=int, default=1, help="CPUs each Ray node offers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        local_s, local = compare(Path(tmp) / "local", args)
        with cluster(args.node_cpus) as address:
            ray_s, remote = compare(Path(tmp) / "ray", args, "--executor", "ray", "--address", address)  # fmt: skip
    print(f"candidates: {args.only} x {args.folds} folds")
    print(f"local (one process)        {local_s:8.1f} s")
    print(f"Ray, 2 nodes x {args.node_cpus} CPU      {ray_s:8.1f} s  (ratio {ray_s / local_s:.2f})")
    print(f"{'candidate':<20}{'local':>9}{'ray':>9}")
    for name, mean in local.items():
        theirs = remote.get(name)
        print(f"{name:<20}{mean if mean is None else f'{mean:.4f}':>9}{theirs if theirs is None else f'{theirs:.4f}':>9}")  # fmt: skip
    diffs = [abs(m - remote[n]) for n, m in local.items() if m is not None and remote.get(n) is not None]  # fmt: skip
    same = set(local) == set(remote) and len(diffs) == len(local)
    ranked = [n for n in sorted(local, key=lambda n: -(local[n] or 0))]
    same_rank = ranked == sorted(remote, key=lambda n: -(remote[n] or 0))
    print(
        f"same candidates, all finished: {same}; same ranking: {same_rank}; largest mean "
        f"difference {max(diffs, default=0.0):.2e} (a Ray task's BLAS uses its --task_cpus threads)"
    )


if __name__ == "__main__":
    run()
