"""``--champion POINTER`` or ``--registry WHERE``: serve retrain.py's champion, and swap in a
new champion when it changes or on SIGHUP (docs/retraining.md, the reload contract).

The pointer is one line, a run directory; retrain.py exports before it renames a new pointer
into place, so ``<run>/export/model.onnx`` exists when it is named. A registry is read by
``mlcycle.retrain.follow`` (passed in as a callable: this layer knows no registry). The new
model is loaded beside the old one and swapped in only once loaded; when loading fails the old
one keeps serving and the log says why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcycle.core.errors import UserError
from mlcycle.serve.model import MODEL, ServedModel

log = logging.getLogger("uvicorn.error")


@dataclass(frozen=True)
class Champion:
    """The champion's model file; from a registry, what ``/v1/model`` shows of its version
    (``registry``) and the model's recorded sha256 (checked once loaded)."""

    model: Path
    registry: dict[str, Any] | None = None
    sha256: str | None = None


def pointer_champion(pointer: Path) -> Callable[[], Champion]:
    """The champion the pointer names, read again at each call."""
    return lambda: Champion(champion_model(pointer))


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
    """Calls ``locate`` every ``interval`` seconds (the pointer is read, not watched: a rename
    changes the inode; a registry is queried) and reloads on a change or on :meth:`request`."""

    def __init__(
        self,
        locate: Callable[[], Champion],
        load: Callable[[Champion], ServedModel],
        swap: Callable[[ServedModel], None],
        interval: float = 2.0,
    ) -> None:
        self.locate, self.load, self.swap, self.interval = locate, load, swap, interval
        self.served: Champion | None = None
        self._wake, self._stop = threading.Event(), threading.Event()
        self._forced = False
        self._thread = threading.Thread(target=self._run, name="champion-watcher", daemon=True)

    def first(self) -> ServedModel:
        """The champion at start-up; a problem here is the user's (exit 2)."""
        champion = self.locate()
        model = self.load(champion)
        self.served = champion
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
        """Reload when the champion changed (or a reload was requested); True when a new model
        is being served."""
        forced, self._forced = self._forced, False
        served = self.served.model if self.served else None
        try:
            champion = self.locate()
            if champion == self.served and not forced:
                return False
            model = self.load(champion)
        except Exception as exc:  # the old model keeps serving; the log says why
            log.error("champion reload failed, still serving %s: %s", served, exc)
            return False
        self.swap(model)
        self.served = champion
        shown = f"v{champion.registry['version']} " if champion.registry else ""
        log.info("now serving %s%s (%s)", shown, champion.model, model.version[:12])
        return True


def check_registered(champion: Champion, sha256: str) -> None:
    """A registry's champion: its recorded sha256 must be the model file's (``sha256``)."""
    if champion.sha256 and sha256 != champion.sha256:
        number = (champion.registry or {}).get("version")
        raise UserError(
            f"'{champion.model}' is not the model registered as v{number} (its sha256 changed "
            "since; it was exported again): promote it again with retrain.py, or --rollback"
        )


def load_champion(champion: Champion, load: Callable[[Path], ServedModel]) -> ServedModel:
    """The champion's model, loaded; a registry's recorded sha256 must be the file's."""
    model = load(champion.model)
    check_registered(champion, model.version)
    model.registry = champion.registry  # shown by /v1/model
    return model
