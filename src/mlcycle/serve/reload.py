"""``--champion POINTER``: serve the run retrain.py's champion pointer names, and swap in a new
champion when the pointer changes or on SIGHUP (docs/retraining.md, the reload contract).

The pointer is one line, a run directory; retrain.py exports before it renames a new pointer
into place, so ``<run>/export/model.onnx`` exists when it is named. The new model is loaded
beside the old one and swapped in only once loaded; when loading fails the old one keeps
serving and the log says why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from mlcycle.core.errors import UserError
from mlcycle.serve.model import MODEL, ServedModel

log = logging.getLogger("uvicorn.error")


def champion_model(pointer: Path) -> Path:
    """The model file of the run the pointer names."""
    try:
        line = pointer.read_text().strip()
    except OSError as exc:
        raise UserError(f"cannot read the champion pointer '{pointer}': {exc.strerror}") from exc
    if not line:
        raise UserError(f"the champion pointer '{pointer}' is empty")
    run = Path(line)
    return (run if run.is_absolute() else pointer.parent / run) / MODEL


class ChampionWatcher:
    """Polls the pointer every ``interval`` seconds (its content: a rename changes the inode,
    so the file is read, not watched) and reloads on a change or on :meth:`request`."""

    def __init__(
        self,
        pointer: Path,
        load: Callable[[Path], ServedModel],
        swap: Callable[[ServedModel], None],
        interval: float = 2.0,
    ) -> None:
        self.pointer, self.load, self.swap, self.interval = pointer, load, swap, interval
        self.served: Path | None = None
        self._wake, self._stop = threading.Event(), threading.Event()
        self._forced = False
        self._thread = threading.Thread(target=self._run, name="champion-watcher", daemon=True)

    def first(self) -> ServedModel:
        """The champion at start-up; a problem here is the user's (exit 2)."""
        path = champion_model(self.pointer)
        model = self.load(path)
        self.served = path
        return model

    def start(self) -> None:
        self._thread.start()

    def request(self) -> None:
        """Reload now, even if the pointer did not change (SIGHUP; safe in a signal handler)."""
        self._forced = True
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if not self._stop.is_set():
                self.check()

    def check(self) -> bool:
        """Reload when the pointer names another run (or a reload was requested); True when a
        new model is being served."""
        forced, self._forced = self._forced, False
        try:
            path = champion_model(self.pointer)
            if path == self.served and not forced:
                return False
            model = self.load(path)
        except Exception as exc:  # the old model keeps serving; the log says why
            log.error("champion reload failed, still serving %s: %s", self.served, exc)
            return False
        self.swap(model)
        self.served = path
        log.info("now serving %s (%s)", path, model.version[:12])
        return True
