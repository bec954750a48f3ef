"""Where compare.py's candidate-folds and tune.py's trials run: here, one after another
(``--executor local``, the default), or as Ray tasks on a cluster (``--executor ray --address
HOST:PORT``).

One seam, :meth:`Executor.map`: the caller gives its jobs and a :class:`Jobs` object that says
how a job is settled here without running (kept from an earlier run, skipped), how it is run
(``fit``: on a Ray worker, so it must pickle), and what a job that could not run records
(``failed``). A Ray task asks for ``--task_cpus`` CPUs and ``--task_gpus`` GPUs; a task whose
worker dies is run again up to ``--retries`` times, then recorded as failed, never lost. The
tasks write into the same output folder as a local run: every node must see it (a shared
filesystem). Ray is the optional extra ``ray``, imported only here and only for ``ray``.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from jsonargparse import ArgumentParser

from mlcycle.core.errors import UserError
from mlcycle.core.extras import needs_extras

J = TypeVar("J")
CONNECT_S = 3.0  # seconds an unreachable --address gets before the one-line error
POLL_S = 1.0  # how often the driver looks at the deadline while tasks run
KINDS = ("local", "ray")


@dataclass
class ExecutorSettings:
    """``--executor`` and its Ray options.

    Args:
        kind: local (one after another here) or ray (Ray tasks)
        address: the Ray cluster's head, HOST:PORT (GCS port) or ray://HOST:PORT (Ray client);
            none: a Ray instance started on this machine
        task_cpus: CPUs each Ray task asks for
        task_gpus: GPUs each Ray task asks for (a fraction shares one)
        retries: times a task whose worker died is run again before it is recorded failed
    """

    kind: str = "local"
    address: str | None = None
    task_cpus: float = 1.0
    task_gpus: float = 0.0
    retries: int = 2


def add_executor_arguments(parser: ArgumentParser) -> None:
    """``--executor``, ``--address``, ``--task_cpus``, ``--task_gpus``, ``--retries``."""
    parser.add_argument("--executor", type=str, default="local", help="local: the jobs run here one after another; ray: as Ray tasks on the cluster at --address (the output folder must be on a filesystem every node sees)")  # fmt: skip
    parser.add_argument("--address", type=str | None, default=None, help="--executor ray: the Ray head, HOST:PORT or ray://HOST:PORT (default: a Ray instance on this machine)")  # fmt: skip
    parser.add_argument("--task_cpus", type=float, default=1.0, help="--executor ray: CPUs per task")  # fmt: skip
    parser.add_argument("--task_gpus", type=float, default=0.0, help="--executor ray: GPUs per task (0.5: two tasks share one)")  # fmt: skip
    parser.add_argument("--retries", type=int, default=2, help="--executor ray: reruns of a task whose worker died, before it is recorded as failed")  # fmt: skip


def settings_of(cfg: Any) -> ExecutorSettings:
    """The checked executor settings of parsed arguments."""
    given = ExecutorSettings(
        cfg.executor, cfg.address, float(cfg.task_cpus), float(cfg.task_gpus), int(cfg.retries)
    )
    if given.kind not in KINDS:
        raise UserError(f"--executor '{given.kind}': choose {' or '.join(KINDS)}")
    if given.task_cpus < 0 or given.task_gpus < 0 or given.retries < 0:
        raise UserError("--task_cpus, --task_gpus and --retries are 0 or more")
    if given.address and given.kind != "ray":
        raise UserError(f"--address {given.address} goes with --executor ray")
    return given


class Jobs(Protocol[J]):
    """What :meth:`Executor.map` needs to know of the caller's jobs."""

    def settle(self, job: J) -> Any | None:
        """The job's record without running it (kept, skipped), or None: it runs."""

    def fit(self, job: J) -> Any:
        """Run the job; its record (on a Ray worker: it is pickled there and back)."""

    def failed(self, job: J, error: str) -> Any:
        """The record of a job that could not finish (its worker died, retries spent)."""

    def skip(self, job: J, why: str) -> Any:
        """The record of a job never started (the deadline passed first)."""


class Executor:
    """Runs the jobs here, one after another, in their order (today's behaviour)."""

    kind = "local"

    def describe(self) -> str:
        return "here, one after another"

    def close(self) -> None:
        """Let go of what the executor holds (nothing here)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def map(self, jobs: list[J], how: Jobs[J], deadline: float | None = None) -> Iterator[tuple[J, Any]]:  # fmt: skip
        """Each job with its record, as they finish. ``deadline`` (``time.monotonic()``):
        jobs still waiting then are recorded by ``how.skip``; a local job is settled (and
        skipped) by ``how.settle`` itself."""
        for job in jobs:
            record = how.settle(job)
            yield job, how.fit(job) if record is None else record


def worker_id() -> str:
    """This process, ``host:pid``: the worker a fold or a trial names (its process may die)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _fit(how: Any, job: Any, cwd: str) -> Any:
    """A Ray task: the job run in the driver's working directory (its relative paths)."""
    if os.path.isdir(cwd):
        os.chdir(cwd)
    return how.fit(job)


class RayExecutor(Executor):
    """Runs each job as a Ray task with its CPUs and GPUs; results come back as they finish."""

    kind = "ray"

    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings
        with needs_extras("--executor ray"):
            import ray
        self.ray = ray
        if ray.is_initialized() and settings.address:  # an earlier connection (a notebook,
            ray.shutdown()  # an earlier compare): --address is the cluster asked for now
        self.connected = not ray.is_initialized()
        if self.connected:
            connect(ray, settings.address)
        resources = ray.cluster_resources()
        self.nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        self.cpus = resources.get("CPU", 0.0)
        self.task = ray.remote(_fit).options(
            num_cpus=settings.task_cpus, num_gpus=settings.task_gpus,
            max_retries=settings.retries, retry_exceptions=False,
        )  # fmt: skip

    def close(self) -> None:
        """Disconnect from Ray when this executor connected: a driver left connected to a
        cluster that stops is ended by Ray a minute later (this process with it)."""
        if self.connected and self.ray.is_initialized():
            self.ray.shutdown()

    def describe(self) -> str:
        s = self.settings
        where = s.address or "a Ray instance on this machine"
        return (
            f"Ray tasks on {where} ({self.nodes} node(s), {self.cpus:g} CPUs; "
            f"{s.task_cpus:g} CPU and {s.task_gpus:g} GPU per task, {s.retries} retries)"
        )

    def map(self, jobs: list[J], how: Jobs[J], deadline: float | None = None) -> Iterator[tuple[J, Any]]:  # fmt: skip
        ray = self.ray
        shared = ray.put(how)  # the comparison or study pickled once, not per task
        pending: dict[Any, J] = {}
        for job in jobs:
            record = how.settle(job)
            if record is not None:
                yield job, record
            else:
                pending[self.task.remote(shared, job, os.getcwd())] = job
        try:
            while pending:
                wait = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
                done, _ = ray.wait(list(pending), num_returns=1, timeout=max(0.0, wait))
                for ref in done:
                    yield pending[ref], self.record(ref, pending.pop(ref), how)
                if deadline is not None and time.monotonic() >= deadline:
                    yield from self.cancel(pending, how, "the time limit was reached")
        finally:  # Ctrl-C or an error in the caller: nothing is left running on the cluster
            for ref in pending:
                ray.cancel(ref, force=True)

    def record(self, ref: Any, job: J, how: Jobs[J]) -> Any:
        from ray.exceptions import RayError, RayTaskError

        try:
            return self.ray.get(ref)
        except RayTaskError as exc:  # the job raised: its own error, one line
            cause = exc.as_instanceof_cause()
            return how.failed(job, f"{type(cause).__name__}: {' '.join(str(cause).split())[:300]}")
        except RayError as exc:  # its worker or node died, retries spent
            line = " ".join(str(exc).split())[:300]
            return how.failed(job, f"its Ray worker died ({self.settings.retries} retries): {line}")

    def cancel(self, pending: dict[Any, J], how: Jobs[J], why: str) -> Iterator[tuple[J, Any]]:
        for ref, job in list(pending.items()):
            self.ray.cancel(ref, force=True)
            del pending[ref]
            yield job, how.skip(job, why)


def reachable(address: str) -> None:
    """Raise the one-line error unless ``address`` (HOST:PORT, ray://HOST:PORT) answers."""
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address '{address}': give HOST:PORT (the Ray head's GCS port, 6379) or ray://HOST:PORT")  # fmt: skip
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_S).close()
    except OSError as exc:
        raise UserError(
            f"--address {address}: no Ray head answers there ({exc.strerror or exc}); start one "
            "with 'ray start --head' or fix the address"
        ) from exc


def connect(ray: Any, address: str | None) -> None:
    if address:
        reachable(address)
    try:
        env = {k: v for k, v in os.environ.items() if k.startswith("MLCYCLE_")}
        ray.init(
            address=address,
            log_to_driver=False,
            configure_logging=False,
            runtime_env={"env_vars": env} if env else None,
        )
    except (ConnectionError, RuntimeError, TimeoutError) as exc:
        where = address or "a Ray instance on this machine"
        raise UserError(f"--address {where}: Ray could not connect ({' '.join(str(exc).split())[:200]})") from exc  # fmt: skip


def open_executor(settings: ExecutorSettings) -> Executor:
    """The executor ``settings`` name (connected to the cluster for ``ray``)."""
    return RayExecutor(settings) if settings.kind == "ray" else Executor()
