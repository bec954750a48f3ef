"""Intra-op threads from the cores that are free, so that a busy machine does not collapse
training on the CPU.

PyTorch starts one intra-op thread per core, and its OpenMP threads wait for each other at
every operation: when another job holds one of two cores, a step waits for a thread the
scheduler has set aside, and an epoch of the quick start took 23.7 s instead of 3.7 s with one
thread. ``--threads auto`` (the default) therefore measures the other work's CPU use over a
short interval and trains with the cores that are left:

* the interval: from the start of argument parsing to just before the model and data are built
  (at least :data:`MIN_INTERVAL_S`); this process's own CPU time is subtracted, so parsing is
  not counted as other work;
* Linux: ``/proc/stat``'s counters of the cores this process may run on; elsewhere
  ``os.getloadavg()``'s one-minute figure; where neither exists, nothing is counted busy;
* a core counts as busy when other work used at least half of it;
* threads = the free cores (at least one) divided among the training processes (DDP on the
  CPU), never more than PyTorch's own default (which ``OMP_NUM_THREADS`` sets).
"""

from __future__ import annotations

import functools
import math
import os
import time
from dataclasses import dataclass

from mlcycle.core.device import available_cores

AUTO = "auto"
MIN_INTERVAL_S = 0.2
STAT = "/proc/stat"
IDLE_FIELDS = (3, 4)  # idle, iowait in a cpuN line of /proc/stat (after the name)
COUNTED_FIELDS = 8  # user nice system idle iowait irq softirq steal (guest is inside user)


@dataclass(frozen=True)
class CpuSample:
    """The CPU counters at one moment: busy and total jiffies of our cores (None without
    ``/proc/stat``), this process's CPU seconds, and the monotonic clock."""

    busy: int | None
    total: int | None
    own_s: float
    at: float


def cpu_sample(stat: str = STAT) -> CpuSample:
    """The counters now, for :func:`other_work`."""
    busy = total = None
    try:
        with open(stat) as file:
            lines = file.read().splitlines()
        ours = {f"cpu{c}" for c in _our_cpus()}
        rows = [words for words in map(str.split, lines) if words and words[0] in ours]
        if rows:
            counts = [[int(v) for v in row[1 : 1 + COUNTED_FIELDS]] for row in rows]
            total = sum(sum(c) for c in counts)
            busy = total - sum(c[i] for c in counts for i in IDLE_FIELDS)
    except (OSError, ValueError, IndexError):
        busy = total = None
    return CpuSample(busy, total, time.process_time(), time.monotonic())


def _our_cpus() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def busy_cores(start: CpuSample, end: CpuSample, cores: int) -> float:
    """Cores that other work kept busy between two samples: all busy time on our cores less
    this process's own CPU time, over the interval."""
    if start.total is None or end.total is None or start.busy is None or end.busy is None:
        raise ValueError("no /proc/stat counters in these samples")
    total = end.total - start.total
    if total <= 0:
        return 0.0
    used = (end.busy - start.busy) / total * cores  # cores busy, ours included
    own = (end.own_s - start.own_s) / max(end.at - start.at, 1e-6)
    return max(0.0, used - own)


def other_work(start: CpuSample | None, cores: int) -> float | None:
    """Cores busy with other work since ``start`` (waiting out :data:`MIN_INTERVAL_S`):
    ``/proc/stat``, else the load average; None when the OS offers neither."""
    if start is not None and start.total is not None:
        time.sleep(max(0.0, MIN_INTERVAL_S - (time.monotonic() - start.at)))
        end = cpu_sample()
        if end.total is not None:
            return busy_cores(start, end, cores)
    if hasattr(os, "getloadavg"):
        try:
            return os.getloadavg()[0]
        except OSError:
            return None
    return None


def busy_count(busy: float | None) -> int:
    """Whole cores counted busy: a core when other work used at least half of it."""
    return 0 if busy is None else math.floor(busy + 0.5)


def free_threads(cores: int, busy: float | None, processes: int = 1, ceiling: int = 0) -> int:
    """Threads per training process: the cores other work leaves free, divided among the
    ``processes``, at least one, and at most ``ceiling`` (PyTorch's default) when given."""
    free = max(1, cores - busy_count(busy))
    threads = max(1, free // max(1, processes))
    return min(threads, ceiling) if ceiling > 0 else threads


@functools.cache
def torch_default_threads() -> int:
    """PyTorch's intra-op threads as the process started (read once, before any change)."""
    import torch

    return torch.get_num_threads()


@dataclass(frozen=True)
class ThreadChoice:
    """The threads chosen for a run, and why: ``busy`` (cores) is None when not measured;
    ``source`` names where a given count came from (``--threads``, ``OMP_NUM_THREADS``)."""

    threads: int
    cores: int
    processes: int = 1
    busy: float | None = None
    source: str = ""

    def line(self) -> str:
        """The line train.py prints first, e.g. ``threads: 1 of 2 cores (about 1 busy with
        other work; --threads N to choose)``."""
        each = f" per process x {self.processes} processes" if self.processes > 1 else ""
        head = f"threads: {self.threads}{each} of {self.cores} cores"
        if self.source:
            return f"{head} (given by {self.source})"
        if self.busy is None:
            return f"{head} (other work not measurable here; --threads N to choose)"
        count = busy_count(self.busy)
        busy = f"about {count} busy with other work" if count else "none busy with other work"
        return f"{head} ({busy}; --threads N to choose)"


def choose_threads(given: int | str, processes: int, start: CpuSample | None) -> ThreadChoice:
    """``--threads`` as a :class:`ThreadChoice`: a count as given; ``auto`` from the cores free
    since ``start``. A process a DDP launcher started (``LOCAL_RANK`` and ``OMP_NUM_THREADS``
    set) takes ``OMP_NUM_THREADS``, the launching process's choice, without measuring again:
    its sibling processes starting beside it are not other work."""
    cores = available_cores()
    if given != AUTO:
        return ThreadChoice(int(given), cores, processes, source=f"--threads {given}")
    inherited = os.environ.get("OMP_NUM_THREADS", "")
    if os.environ.get("LOCAL_RANK") and inherited.isdigit() and int(inherited) > 0:
        return ThreadChoice(int(inherited), cores, processes, source="OMP_NUM_THREADS")
    busy = other_work(start, cores)
    threads = free_threads(cores, busy, processes, torch_default_threads())
    return ThreadChoice(threads, cores, processes, busy)


def apply_threads(choice: ThreadChoice) -> None:
    """Set PyTorch's intra-op threads; with several processes also ``OMP_NUM_THREADS``, which
    the processes Lightning starts inherit and which keeps it from choosing its own."""
    import torch

    torch_default_threads()  # remembered before it changes
    torch.set_num_threads(choice.threads)
    if choice.processes > 1:
        os.environ["OMP_NUM_THREADS"] = str(choice.threads)
