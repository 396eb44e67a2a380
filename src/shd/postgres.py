"""A throwaway PostgreSQL server on 127.0.0.1 for tests and `make postgres`: the team setup (MLflow
backend store, Optuna storage, registry lock) exercised against the real database, not a stand-in.

Uses Debian's `postgresql` package (`initdb`/`pg_ctl` under /usr/lib/postgresql/<N>/bin): it is one
`apt-get install` on the CI image and on a workstation, and it is the server a team actually runs.
Postgres refuses to run as root, so as root (CI containers) the server runs as the `postgres` system
user the package creates, through `runuser`. Authentication is `trust` on 127.0.0.1 only: a local
throwaway server, never a shared one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from shd.errors import InputError

SUPERUSER = "shd"
SYSTEM_USER = "postgres"  # runs the server when we are root


def bin_dir() -> Path | None:
    """The newest Debian Postgres bin folder, else the folder of `pg_ctl` on PATH (None: not installed)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PgServer:
    """A running server; `url(db)` is what MLflow, Optuna and SQLAlchemy take."""

    data_dir: Path
    port: int
    bin: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, *cmd: str) -> list[str]:
        """Server-side commands run as the data folder's owner (`postgres` when we are root)."""
        return ["runuser", "-u", SYSTEM_USER, "--", *cmd] if os.geteuid() == 0 else list(cmd)

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        subprocess.run(
            [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return self.url(name)

    def start(self, timeout: float = 60) -> None:
        """Start (or restart after `stop`) on the same folder and port; returns once it accepts TCP."""
        log = self.data_dir / "server.log"
        opts = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories='{self.data_dir}'"
        )
        cmd = self._as_owner(
            str(self.bin / "pg_ctl"), "-D", str(self.data_dir / "data"), "-l", str(log), "-o", opts, "-w",
            "-t", str(int(timeout)), "start",
        )  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 10)
        if proc.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise InputError(str(self.data_dir), f"PostgreSQL did not start: {proc.stderr.strip()} {tail}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # `-w` waits on the socket; wait for TCP too
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise InputError(str(self.data_dir), f"PostgreSQL not accepting connections on port {self.port}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`immediate`: like a crash; `fast`: clients are disconnected)."""
        subprocess.run(
            self._as_owner(
                str(self.bin / "pg_ctl"), "-D", str(self.data_dir / "data"), "-m", mode, "-w", "stop"
            ),
            capture_output=True,
            timeout=120,
            check=False,
        )


def start(folder: str | Path | None = None, port: int | None = None) -> PgServer:
    """initdb a new cluster in `folder` (default: a new temporary folder) and start it on `port`
    (default: a free one). As root the folder is handed to the `postgres` user first."""
    binary = bin_dir()
    if binary is None:
        raise InputError(
            "initdb/pg_ctl", "PostgreSQL is not installed (Debian: apt-get install -y postgresql)"
        )
    root = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="shd-pg-"))
    root.mkdir(parents=True, exist_ok=True)
    server = PgServer(root.resolve(), port or _free_port(), binary)
    if os.geteuid() == 0:
        shutil.chown(root, SYSTEM_USER)
    if not (root / "data" / "PG_VERSION").exists():
        cmd = server._as_owner(
            str(binary / "initdb"), "-D", str(root / "data"), "-U", SUPERUSER, "--auth=trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise InputError(str(root), f"initdb failed: {proc.stderr.strip()[-2000:]}")
    server.start()
    return server


def main(argv: list[str] | None = None) -> None:
    """`python -m shd.postgres start|stop FOLDER [PORT]` (`make postgres`): a local server that outlives
    the command (pg_ctl detaches it); prints the URL to give MLFLOW_TRACKING_URI / `--storage`."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2 or args[0] not in ("start", "stop"):
        raise SystemExit("usage: python -m shd.postgres start|stop FOLDER [PORT]")
    folder, port = Path(args[1]).resolve(), int(args[2]) if len(args) > 2 else 5432
    if args[0] == "stop":
        binary = bin_dir()
        if binary is not None:
            PgServer(folder, port, binary).stop()
        return
    server = start(folder, port)
    for db in ("mlflow", "optuna"):
        try:
            server.create_database(db)
        except subprocess.CalledProcessError:
            pass  # exists from an earlier start
    print(f"PostgreSQL on 127.0.0.1:{port} ({folder}); stop: make postgres-stop")
    print(f"  MLflow store: {server.url('mlflow')}\n  Optuna storage: {server.url('optuna')}")


if __name__ == "__main__":
    main()
