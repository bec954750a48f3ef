"""A throwaway PostgreSQL server (Debian's package, started by .ci/postgres.sh) for the tests
that need one, and ``store_url``: the same store tests on SQLite and on PostgreSQL.

One server per test session (per xdist worker), started on first use. It starts when
``MLCYCLE_TEST_POSTGRES`` is set (then a failure to start fails the test: CI installs the
package) or when the binaries are present; otherwise the PostgreSQL cases skip and say why.
``MLCYCLE_TEST_POSTGRES=postgresql+psycopg://...`` uses that server instead of starting one.
Each test gets a database of its own (``postgres_url``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "postgres.sh"


class PostgresServer:
    """A cluster in a folder of its own: its URL, and stop/restart for fault tests."""

    def __init__(self, folder: Path | None = None, url: str | None = None) -> None:
        self.folder = folder
        self.url = url or self._script("start")

    def _script(self, action: str) -> str:
        done = subprocess.run(
            ["bash", str(SCRIPT), action, str(self.folder)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"{SCRIPT.name} {action} failed: {done.stderr.strip()[-500:]}")
        return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""

    def stop(self) -> None:
        self._script("stop")

    def restart(self) -> None:
        self._script("restart")

    def new_database(self) -> str:
        """A fresh, empty database on this server; its URL."""
        import sqlalchemy as sa

        name = f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(sa.text(f"CREATE DATABASE {name}"))
        engine.dispose()
        return self.url.rsplit("/", 1)[0] + f"/{name}"


def unavailable() -> str | None:
    """Why no server can be started here (None when one can)."""
    if os.environ.get("MLCYCLE_TEST_POSTGRES"):
        return None
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    have = shutil.which("initdb") or any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return None if have else "PostgreSQL is not installed (.ci/postgres.sh install)"


def start_server() -> PostgresServer:
    """A new server in a temporary folder (user postgres must reach it: mode 755)."""
    parent = Path(tempfile.mkdtemp(prefix="mlcycle-pg-"))
    parent.chmod(0o755)
    return PostgresServer(parent / "cluster")


def remove_server(server: PostgresServer) -> None:
    server.stop()
    shutil.rmtree(server.folder.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    given = os.environ.get("MLCYCLE_TEST_POSTGRES", "")
    if given.startswith("postgresql"):
        yield PostgresServer(url=given)
        return
    server = start_server()
    yield server
    remove_server(server)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A database of this test's own on the session's server."""
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """A store URL: a SQLite file, then a PostgreSQL database (skipped where none can run)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'predictions.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request, tmp_path) -> str:
    """A model registry URL: a SQLite file, then a PostgreSQL database (skipped where none can
    run)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("postgres_url")
