"""Figures drawn off the training path, in a low-priority process.

Drawing a gallery or a confusion matrix takes a tenth of a second or more of matplotlib; done
at every epoch end it costs training time. Instead the training process hands each figure over
as a job (a figure function named by module and name, its arguments, the PNG to write, the
TensorBoard tag and step) to :func:`draw_later`. One worker process per Python process, started
when a fit starts (:func:`start`) or on first use, at the lowest priority (``nice`` 19 and
Linux's idle scheduling class), builds the figure and writes the PNG atomically. On a GPU box
it runs beside training on an idle core; on a CPU whose cores all train it still slows training
while it draws, so after each figure it rests 19 times as long as the figure took
(:data:`REST`): it draws at most 5% of the time. At the end of the fit, what it has not drawn
yet is drawn by the training process.

A job for a file that the worker has not started yet is replaced by a newer one for the same
file (only the latest best epoch is drawn). Finished PNGs go to TensorBoard, at their own
epoch, the next time the trainer hands a figure over and at the end of the fit (:func:`finish`,
after which every figure of the fit exists). When the worker cannot start or dies, figures are
drawn in the training process, as before. ``MLCYCLE_FIGURES=inline`` draws every figure in the
training process (for debugging).

Run as ``python -m mlcycle.reports.figure_worker``, this module is the worker: it reads pickled
jobs on stdin and answers on stdout; both ends are this module, nothing a user hands over.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import importlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

RUNNING_WAIT_S = 10.0  # at a fit's end, how long the worker may go on drawing one of its figures
# After each figure the worker rests this many times as long as the figure took, so it draws at
# most 1/(1+REST) of the time. Even at the lowest priority, a drawing process on a machine whose
# cores all train slows training (caches, wake-ups): about 10% on 2 cores when it never rests.
REST = 19.0


@dataclass
class Job:
    """One figure: ``module.name(**kwargs)`` returns a matplotlib Figure, saved at ``path``."""

    owner: int  # id() of the trainer that asked for it
    path: str
    module: str
    name: str
    kwargs: dict[str, Any]
    tag: str | None = None  # TensorBoard image tag; None: the PNG only
    step: int = 0
    seq: int = field(default=0)


def render(job: Job) -> None:
    """Build the figure and write its PNG (atomically, see ``reports.figures.save``)."""
    from mlcycle.reports.figures import save

    build = getattr(importlib.import_module(job.module), job.name)
    save(build(**job.kwargs), Path(job.path))


# --- the worker process -----------------------------------------------------------------------


def serve(jobs: BinaryIO, answers: BinaryIO) -> None:
    """Answer ``None`` (ready), then ``(seq, error or None)`` after each job, until a ``None``
    job arrives or the pipe closes."""
    pickle.dump(None, answers)
    answers.flush()
    while True:
        try:
            job = pickle.load(jobs)
        except EOFError:
            return
        if job is None:
            return
        try:
            render(job)
            error = None
        except Exception as exc:  # a figure that fails must not stop the others
            error = f"{type(exc).__name__}: {exc}"
        pickle.dump((job.seq, error), answers)
        answers.flush()


def _lower_priority() -> None:
    """``nice`` 19, and on Linux the idle scheduling class: a niced process still holds a core
    until the next scheduler tick, which stalls a training op whose threads wait for each other;
    an idle-class process gives the core up as soon as a training thread wakes."""
    if hasattr(os, "nice"):
        os.nice(19)
    if hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError:  # not allowed here (some containers): nice alone
            pass


def _worker_main() -> None:
    # Ctrl-C (or a notebook's interrupt) is for the parent, which ends the worker by closing
    # its stdin; the worker itself prints no traceback for it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _lower_priority()
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # anything a library prints must not corrupt the answers
    _warm_up()
    serve(sys.stdin.buffer, answers)


def _warm_up() -> None:
    """Import the figure code and draw one tiny figure (fonts, the PNG writer) before saying
    ready: the first real figure then costs what later ones do, and the start-up, about 1.5 s
    of CPU, falls in the fit's set-up rather than in a training epoch."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    from mlcycle.reports import figures

    fig = figures.plt.figure(figsize=(1, 1))
    fig.text(0.5, 0.5, "0.9 abc", fontsize=9)
    fig.savefig(io.BytesIO(), format="png", dpi=50)
    figures.plt.close(fig)


# --- the training process's side ---------------------------------------------------------------


class FigureWorker:
    """The training process's handle on the worker: a process and one thread that feeds it."""

    def __init__(self) -> None:
        package_parent = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlcycle.reports.figure_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        self.cond = threading.Condition()
        self.pending: dict[str, Job] = {}  # by path: not yet sent, the newest wins
        self.running: Job | None = None
        self.done: list[tuple[Job, str | None]] = []
        self.alive = True
        self.ready = threading.Event()  # set once the worker has its imports done
        self._seq = 0
        self.thread = threading.Thread(target=self._feed, name="mlcycle-figures", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> bool:
        """Queue ``job``; false when the worker is gone (draw it here instead)."""
        with self.cond:
            if not self.alive:
                return False
            self._seq += 1
            job.seq = self._seq
            self.pending.pop(job.path, None)
            self.pending[job.path] = job
            self.cond.notify_all()
        return True

    def take_done(self, owner: int) -> list[tuple[Job, str | None]]:
        """Finished jobs of ``owner`` (removed), with their error or None."""
        with self.cond:
            mine = [d for d in self.done if d[0].owner == owner]
            self.done = [d for d in self.done if d[0].owner != owner]
        return mine

    def take_back(self, owner: int, timeout: float) -> list[Job]:
        """The jobs of ``owner`` the worker has not drawn yet, for the caller to draw: those not
        started at once, the one being drawn after ``timeout`` seconds (a low-priority process
        on a busy machine may not get the CPU before training ends)."""
        with self.cond:
            back = [j for j in self.pending.values() if j.owner == owner]
            for job in back:
                self.pending.pop(job.path, None)

            def drawing() -> bool:
                return self.running is not None and self.running.owner == owner

            self.cond.wait_for(
                lambda: not self.alive or not drawing() or self.proc.poll() is not None, timeout
            )
            if drawing():
                back.insert(0, self.running)  # drawn twice at worst; each write is atomic
        return back

    def _busy(self, owner: int) -> bool:
        running = self.running is not None and self.running.owner == owner
        return running or any(j.owner == owner for j in self.pending.values())

    def _feed(self) -> None:
        try:
            stdout, stdin = self.proc.stdout, self.proc.stdin
            assert stdout is not None and stdin is not None
            pickle.load(stdout)  # ready
            self.ready.set()
            while True:
                with self.cond:
                    self.cond.wait_for(lambda: self.pending or not self.alive)
                    if not self.alive:
                        return
                    job = self.pending.pop(next(iter(self.pending)))
                    self.running = job
                started = time.monotonic()
                pickle.dump(job, stdin)
                stdin.flush()
                seq, error = pickle.load(stdout)
                with self.cond:
                    self.done.append((job, error))
                    self.running = None
                    self.cond.notify_all()
                    rest = REST * (time.monotonic() - started)
                    self.cond.wait_for(lambda: not self.alive, rest)  # newer jobs replace older
        except (EOFError, OSError, pickle.PickleError, ValueError):
            pass
        with self.cond:
            self.alive = False
            self.cond.notify_all()

    def _stop(self) -> None:
        self.alive = False
        self.cond.notify_all()
        if self.proc.poll() is None:
            self.proc.kill()

    def close(self) -> None:
        with self.cond:
            self._stop()
        self.proc.wait()


_worker: FigureWorker | None = None
_lock = threading.Lock()


def _shared_worker() -> FigureWorker | None:
    """The process's worker, started on first use; None when figures are drawn inline."""
    global _worker
    if os.environ.get("MLCYCLE_FIGURES", "").lower() == "inline":
        return None
    with _lock:
        if _worker is not None and _worker.proc.poll() is not None:
            _worker.close()  # it exited (killed, out of memory): its thread may not know yet
        if _worker is None or not _worker.alive:
            try:
                _worker = FigureWorker()
            except OSError as exc:
                print(f"warning: figures are drawn inline ({exc})", file=sys.stderr)
                return None
        return _worker


def start(wait_s: float = 0.0) -> bool:
    """Start the process's worker now rather than at the first figure, and wait up to
    ``wait_s`` seconds for it to be ready; whether it is (false when figures are inline)."""
    worker = _shared_worker()
    return worker is not None and worker.ready.wait(wait_s)


def _close_shared() -> None:
    if _worker is not None:
        _worker.close()


atexit.register(_close_shared)


_SKIPPED = contextvars.ContextVar("mlcycle_figures_skipped", default=False)


@contextlib.contextmanager
def skipped() -> Iterator[None]:
    """Fits inside draw no figures (compare's fold runs under ``--time_limit``)."""
    token = _SKIPPED.set(True)
    try:
        yield
    finally:
        _SKIPPED.reset(token)


def draw_later(
    trainer: Any,
    filename: str,
    build: Callable[..., Any],
    kwargs: dict[str, Any],
    tag: str | None = None,
) -> Path:
    """Have ``build(**kwargs)`` drawn to ``filename`` in the run directory (and to TensorBoard
    under ``tag``, at the current epoch) without holding up training. Only the first process
    of a distributed run draws. ``build`` must be a module-level function; ``kwargs`` plain
    data (numpy arrays, lists, strings), not tensors or modules."""
    path = Path(trainer.default_root_dir) / filename
    if not trainer.is_global_zero or _SKIPPED.get():
        return path
    job = Job(id(trainer), str(path), build.__module__, build.__name__, kwargs, tag)
    job.step = trainer.current_epoch
    worker = _shared_worker()
    if worker is not None:
        _to_tensorboard(trainer, worker.take_done(id(trainer)))
        if worker.submit(job):
            return path
    render(job)
    _to_tensorboard(trainer, [(job, None)])
    return path


def finish(trainer: Any) -> None:
    """Draw ``trainer``'s last figures: the worker's finished ones go to TensorBoard, the ones it
    has not started (or is still drawing after a few seconds) are drawn here. Called at the end
    of a fit, also after an error."""
    worker = _worker
    if worker is None:
        return
    back = worker.take_back(id(trainer), RUNNING_WAIT_S)
    finished = worker.take_done(id(trainer))
    for job in back:
        try:
            render(job)
            finished.append((job, None))
        except Exception as exc:
            finished.append((job, f"{type(exc).__name__}: {exc}"))
    _to_tensorboard(trainer, finished)


def _to_tensorboard(trainer: Any, finished: list[tuple[Job, str | None]]) -> None:
    if not finished:
        return
    from lightning.pytorch.loggers import TensorBoardLogger

    loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
    newest = {job.path: job.seq for job, _ in finished}  # a PNG redrawn since shows the later one
    for job, _ in finished:
        newest[job.path] = max(newest[job.path], job.seq)
    for job, error in sorted(finished, key=lambda d: d[0].seq):
        if job.seq != newest[job.path]:
            continue
        if error is not None:
            print(f"warning: could not draw {Path(job.path).name}: {error}", file=sys.stderr)
            continue
        if job.tag is None or not loggers or not Path(job.path).is_file():
            continue
        import numpy as np
        from PIL import Image

        with Image.open(job.path) as png:
            pixels = np.asarray(png.convert("RGB"))
        for logger in loggers:
            logger.experiment.add_image(job.tag, pixels, global_step=job.step, dataformats="HWC")


if __name__ == "__main__":
    _worker_main()
