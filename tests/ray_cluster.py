"""A Ray head and one worker node on loopback for the Ray tests (``ray start`` subprocesses,
one per module), and what the fault tests need: :class:`KillPoint`, a Lightning callback that
makes a fit wait to be killed, and :func:`killing`, which kills each process that waits.

The nodes get this folder on ``PYTHONPATH``, so a Ray worker imports :class:`KillPoint` from a
run's ``--trainer.callbacks`` as the driver does.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from lightning.pytorch.callbacks import Callback

HERE = Path(__file__).resolve().parent
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_tests_path(env: dict[str, str]) -> dict[str, str]:
    """``env`` with this folder first on ``PYTHONPATH`` (the test helpers importable)."""
    paths = [str(HERE), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    return {**env, "PYTHONPATH": os.pathsep.join(paths)}


def start(args: list[str], log: Path) -> subprocess.Popen:
    common = ["--block", "--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]  # fmt: skip
    return subprocess.Popen(  # its own process group: the node's processes stop with it
        [RAY, "start", *args, *common],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=with_tests_path(dict(os.environ)),
    )


def wait_for_nodes(address: str, count: int, timeout: float = 90.0) -> None:
    import ray

    ends = time.monotonic() + timeout
    ray.init(address=address, log_to_driver=False)
    try:
        while sum(n["Alive"] for n in ray.nodes()) < count:
            assert time.monotonic() < ends, f"{count} Ray nodes did not join in {timeout} s"
            time.sleep(0.5)
    finally:
        ray.shutdown()


@contextlib.contextmanager
def ray_cluster() -> Iterator[str]:
    """A Ray head and one worker node on loopback (1 CPU each); their address. Both stopped
    (by their process groups) after."""
    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths
    port = free_port()
    address = f"127.0.0.1:{port}"
    head_args = ["--head", "--port", str(port), "--temp-dir", str(temp), "--include-dashboard=false",
                 "--ray-client-server-port", str(free_port())]  # fmt: skip
    procs = [start(head_args, temp / "head.log")]
    try:
        for _ in range(120):
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            time.sleep(0.5)
        procs.append(start(["--address", address], temp / "worker.log"))
        wait_for_nodes(address, 2)
        yield address
    finally:
        for proc in procs:  # every process of both nodes (raylet, agents, workers)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        ends = time.monotonic() + 5
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, ends - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


class KillPoint(Callback):
    """Test only: the first ``deaths`` fits to start, counted over every process through files in
    ``folder``, write their pid to ``death<i>.pid`` and wait there to be killed (by
    :func:`killing`); after ``wait_s`` seconds unkilled, the fit fails. Later fits run as usual.

    Args:
        folder: where the deaths are counted (a folder every process sees)
        deaths: how many fits wait to be killed
        wait_s: how long one waits before it gives up
        run_dir_name: only fits whose run directory has this name count (compare's ``fold1``);
            none: every fit
    """

    def __init__(
        self, folder: str, deaths: int = 1, wait_s: float = 60.0, run_dir_name: str | None = None
    ) -> None:
        self.folder, self.deaths, self.wait_s = Path(folder), deaths, wait_s
        self.run_dir_name = run_dir_name

    def on_train_start(self, trainer, pl_module) -> None:
        if self.run_dir_name and Path(trainer.default_root_dir).name != self.run_dir_name:
            return
        for i in range(self.deaths):
            try:
                fd = os.open(self.folder / f"death{i}.pid", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                continue  # that death is another fit's
            os.write(fd, f"{os.getpid()}\n".encode())
            os.close(fd)
            time.sleep(self.wait_s)
            raise RuntimeError(f"KillPoint: not killed within {self.wait_s} s")


@contextlib.contextmanager
def killing(folder: Path, poll_s: float = 0.1) -> Iterator[list[int]]:
    """While inside: SIGKILL each process that :class:`KillPoint` says waits in ``folder``; the
    list of the pids killed."""
    killed: list[int] = []
    seen: set[Path] = set()
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(poll_s):
            for path in sorted(set(folder.glob("death*.pid")) - seen):
                text = path.read_text()
                if not text.endswith("\n"):
                    continue  # still being written
                seen.add(path)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(text), signal.SIGKILL)
                    killed.append(int(text))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield killed
    finally:
        stop.set()
        thread.join(timeout=5)
