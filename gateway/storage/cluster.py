"""A PostgreSQL cluster of the project's own, for `make run`, the test session and the benchmark.

It uses the machine's PostgreSQL server binaries (PG_BINDIR, `pg_config --bindir`, or the newest
/usr/lib/postgresql/*/bin); where there are none, the binaries that the `pgserver` wheel carries.
As root it runs them as an unprivileged user, since initdb refuses root. The cluster listens on a
unix socket in its own directory and on a free loopback port, so it never disturbs another server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "courier"
_SOCKET_PATH_LIMIT = 100  # sun_path is 108 bytes; the socket file name needs ~20 of them


class ClusterError(RuntimeError):
    """The managed cluster could not be found, created, started or stopped."""


def find_bindir() -> Path:
    """Returns the directory holding initdb, pg_ctl and postgres, or raises ClusterError saying what to install."""
    for candidate in _bindir_candidates():
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise ClusterError(
        "no PostgreSQL server binaries found: install the Debian package postgresql "
        "(apt-get install postgresql), or `pip install pgserver`, or set DATABASE_URL"
    )


def _bindir_candidates() -> list[Path]:
    found: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        found.append(Path(os.environ["PG_BINDIR"]))
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            found.append(Path(out.stdout.strip()))
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    found.extend(versions)
    try:
        import pgserver  # type: ignore[import-untyped]  # the fallback wheel; optional

        found.append(Path(pgserver.__file__).parent / "pginstall" / "bin")
    except ImportError:
        pass
    return found


def _version_key(path: Path) -> float:
    try:
        return float(path.parent.name)
    except ValueError:
        return 0.0


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Cluster:
    """One managed cluster: its data directory, socket directory and port."""

    root: Path
    port: int = 0
    fsync: bool = True
    _bindir: Path | None = None
    _socket_dir: Path | None = None

    @property
    def data_dir(self) -> Path:
        """Where the cluster's files live."""
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        """Where the cluster's unix socket lives (short enough for sun_path)."""
        if self._socket_dir is None:
            wanted = self.root / "run"
            if len(str(wanted)) > _SOCKET_PATH_LIMIT:
                wanted = Path(tempfile.mkdtemp(prefix="courier-pg-"))
            wanted.mkdir(parents=True, exist_ok=True)
            self._socket_dir = wanted
        return self._socket_dir

    def dsn(self, database: str = "courier") -> str:
        """A libpq URL for a database of this cluster, over the unix socket."""
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={self.port}"

    def tcp_dsn(self, database: str = "courier") -> str:
        """A libpq URL for a database of this cluster, over loopback TCP."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Creates the cluster if it does not exist yet, then starts it on a free port."""
        self._bindir = find_bindir()
        self.root.mkdir(parents=True, exist_ok=True)
        self._prepare_owner()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self.port = self.port or free_port()
        self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir),
            "-l", str(self.root / "postgres.log"), "-o", self._server_options(),
        )
        self._createdb("courier")

    def stop(self) -> None:
        """Stops the cluster (fast shutdown: running sessions are ended, committed data is kept)."""
        if self._bindir and (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", str(self.data_dir))

    def destroy(self) -> None:
        """Stops the cluster and removes its files."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        if self._socket_dir and not self._socket_dir.is_relative_to(self.root):
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def _server_options(self) -> str:
        opts = [
            f"-p {self.port}", "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.socket_dir}", "-c max_connections=200",
            "-c shared_buffers=256MB",
        ]
        if not self.fsync:  # throwaway test clusters only: nothing there must survive a crash
            opts += ["-c fsync=off", "-c full_page_writes=off"]
        return " ".join(opts)

    def _initdb(self) -> None:
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "--auth=trust",
            "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
        )

    def _createdb(self, name: str) -> None:
        exists = self._run(
            "psql", "-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres",
            "-Atc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'",
        )
        if exists.strip() != "1":
            self._run("createdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", SUPERUSER, name)

    def _run(self, tool: str, *args: str) -> str:
        assert self._bindir is not None
        user = _service_user()
        proc = subprocess.run(
            [str(self._bindir / tool), *args], capture_output=True, text=True, check=False,
            user=user, group=pwd.getpwnam(user).pw_gid if user else None, extra_groups=[] if user else None,
            env={**os.environ, "LC_ALL": "C.UTF-8"}, cwd="/",
        )
        if proc.returncode != 0:
            raise ClusterError(f"{tool} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def _prepare_owner(self) -> None:
        user = _service_user()
        if user is None:
            return
        entry = pwd.getpwnam(user)
        _open_prefixes(self.root)
        for path in (self.root, self.socket_dir):
            os.chown(path, entry.pw_uid, entry.pw_gid)
            path.chmod(0o700)


def _service_user() -> str | None:
    """The user that runs the server: None when we are not root; else postgres, created if missing."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "courier-pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "courier-pg"], check=True, capture_output=True)
    return "courier-pg"


def _open_prefixes(path: Path) -> None:
    """Lets the service user traverse (o+x) every directory above the cluster, as initdb requires."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
