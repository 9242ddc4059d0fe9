"""``lisearch serve``: a long-running Spark SQL endpoint over the warehouse, and how clients find it (no pyspark here).

The endpoint is one background process (:mod:`lisearch.spark.serve`) that holds a Spark session with Delta and every
warehouse table registered, and serves it twice: the Thrift JDBC/ODBC server (HiveServer2 protocol: beeline, DBeaver,
Superset, Tableau, pyhive) and Spark Connect (``SparkSession.builder.remote``). This module starts, finds and stops
it. The process holds the lock ``serve`` of the home for as long as it lives (:func:`lisearch.locks.lock_held`), and
describes itself in ``<home>/serve/endpoint.json`` (pid, ports, start time); a description whose process no longer
holds the lock is a crashed endpoint, reported by ``--status`` and replaced by the next start. Its output goes to
``<home>/logs/serve.log``, Spark's Java log to ``<home>/logs/spark-java.log``.

Security: bound to loopback by default. Any other address needs a secret (``serve.secret_env``, default
``LISEARCH_SERVE_SECRET``, or ``serve.secret_file``, readable by its owner only), never given on a command line: the
Thrift server then asks for it as the password (any user name), Spark Connect as the bearer token. Read-only unless
``serve.allow_writes``: a check inside Spark's analyzer (``lisearch/java``) refuses writes, drops, reflection and
client code before anything runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from lisearch.config import Settings
from lisearch.errors import EnvironmentProblem, InputError
from lisearch.locks import lock_held

#: Lock key held by the endpoint process for its lifetime.
LOCK_KEY = "serve"
#: The module the endpoint process runs.
SERVER_MODULE = "lisearch.spark.serve"
#: Environment variables through which the endpoint process gets the secret: read by lisearch's Thrift password
#: check (``lisearch/java/lisearch/serve/TokenAuthenticator.java``) and by Spark Connect's pre-shared token check.
SECRET_ENV_THRIFT = "LISEARCH_SERVE_SECRET"
SECRET_ENV_CONNECT = "SPARK_CONNECT_AUTHENTICATE_TOKEN"


@dataclass(frozen=True)
class Endpoint:
    """What a running endpoint says about itself (``<home>/serve/endpoint.json``)."""

    pid: int
    host: str
    thrift_port: int
    connect_port: int
    started: str
    warehouse: str
    allow_writes: bool
    auth: bool
    ready: bool = False

    @property
    def client_host(self) -> str:
        """The address a client on this machine dials ("localhost" for loopback and wildcard binds: Spark Connect's
        client sends a token without TLS only to "localhost")."""
        return "localhost" if self.host in ("127.0.0.1", "::1", "0.0.0.0", "::", "localhost") else self.host

    @property
    def jdbc_url(self) -> str:
        """The HiveServer2 JDBC URL (beeline ``-u``, DBeaver, ...)."""
        return f"jdbc:hive2://{self.client_host}:{self.thrift_port}/default"

    @property
    def connect_url(self) -> str:
        """The Spark Connect URL without the token (``SparkSession.builder.remote``; add ``/;token=...`` with auth)."""
        return f"sc://{self.client_host}:{self.connect_port}"


def state_path(settings: Settings) -> Path:
    """``<home>/serve/endpoint.json``."""
    return settings.paths.home / "serve" / "endpoint.json"


def log_path(settings: Settings) -> Path:
    """``<home>/logs/serve.log``: the endpoint process's own output."""
    return settings.paths.home / "logs" / "serve.log"


def write_state(settings: Settings, endpoint: Endpoint) -> None:
    """Write the endpoint's description atomically (a reader never sees half a file)."""
    path = state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(asdict(endpoint), indent=1) + "\n")
    partial.replace(path)


def read_state(settings: Settings) -> Endpoint | None:
    """The recorded endpoint, or None when there is none (or its file is unreadable: a crash while it was written)."""
    try:
        return Endpoint(**json.loads(state_path(settings).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def alive(settings: Settings) -> bool:
    """True when an endpoint process of this home is running (it holds the ``serve`` lock)."""
    return lock_held(settings.paths.home, LOCK_KEY)


def status(settings: Settings) -> tuple[str, Endpoint | None]:
    """``("running", endpoint)``, ``("starting", endpoint)``, ``("crashed", last description)`` or
    ``("stopped", None)``."""
    endpoint = read_state(settings)
    if alive(settings):
        return ("running" if endpoint is not None and endpoint.ready else "starting"), endpoint
    if endpoint is not None or state_path(settings).exists():
        return "crashed", endpoint
    return "stopped", None


def running_endpoint(settings: Settings) -> Endpoint | None:
    """The endpoint clients of this home should use: running, ready and serving this warehouse; else None."""
    state, endpoint = status(settings)
    if state != "running" or endpoint is None:
        return None
    if Path(endpoint.warehouse) != settings.paths.warehouse_dir.resolve():
        return None
    return endpoint


def read_secret(settings: Settings) -> str | None:
    """The endpoint's secret: the environment variable ``serve.secret_env``, else the file ``serve.secret_file``
    (which only its owner may read); None when neither is set.

    Raises:
        InputError: the file is missing, empty or readable by others.
    """
    serve = settings.serve
    value = os.environ.get(serve.secret_env, "") if serve.secret_env else ""
    if value.strip():
        return value.strip()
    if not serve.secret_file:
        return None
    path = Path(serve.secret_file).expanduser()
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise InputError(
            f"serve.secret_file {path} cannot be read ({exc.strerror}). Point it at a file that holds the secret."
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"serve.secret_file {path} is readable by others: `chmod 600 {path}` and start again.")
    if not text:
        raise InputError(f"serve.secret_file {path} is empty: write the secret into it and start again.")
    return text


def check_bind(settings: Settings, secret: str | None) -> None:
    """Refuse a non-loopback bind address without a secret (nothing is started)."""
    serve = settings.serve
    if serve.loopback or secret is not None:
        return
    raise InputError(
        f"Refused: serve.host = {serve.host!r} lets other machines reach the warehouse, and no secret is set. Put "
        f"one in the environment variable {serve.secret_env} or in a file named by serve.secret_file (chmod 600), "
        "never on the command line; clients then give it as their password (Thrift) or token (Spark Connect). "
        'Or bind to loopback (serve.host = "127.0.0.1").'
    )


def _check_port_free(host: str, port: int, key: str) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise InputError(
                f"serve.{key} {port} on {host} is taken ({exc.strerror}): stop what uses it or choose another port "
                f"(--set serve.{key}=...)."
            ) from None


def start(
    settings: Settings, profile: str | None, overrides: list[str], say: Callable[[str], None] = print
) -> Endpoint:
    """Start the endpoint in the background and wait until it answers; return its description. An endpoint of this
    home that is already running is returned as it is; a crashed one's description is replaced.

    Raises:
        InputError: non-loopback bind without a secret, a port taken, a bad secret file.
        EnvironmentProblem: the endpoint process ended or did not answer within ``serve.start_timeout``.
    """
    secret = read_secret(settings)
    check_bind(settings, secret)
    state, endpoint = status(settings)
    if state in ("running", "starting") and endpoint is not None:
        say(f"lisearch serve is already {state} (pid {endpoint.pid}, since {endpoint.started}).")
        return _wait_ready(settings, endpoint.pid, None)
    if state == "crashed":
        who = f"pid {endpoint.pid}, started {endpoint.started}" if endpoint else "unknown"
        say(f"The previous endpoint ({who}) is no longer running (crashed or killed): starting a new one.")
        state_path(settings).unlink(missing_ok=True)
    serve = settings.serve
    _check_port_free(serve.host, serve.thrift_port, "thrift_port")
    _check_port_free(serve.host, serve.connect_port, "connect_port")
    log = log_path(settings)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    for name in (SECRET_ENV_THRIFT, SECRET_ENV_CONNECT):
        env.pop(name, None)
    if secret is not None:
        env[SECRET_ENV_THRIFT] = env[SECRET_ENV_CONNECT] = secret
    cmd = [sys.executable, "-m", SERVER_MODULE]
    if profile:
        cmd += ["--profile", profile]
    for text in overrides:
        cmd += ["--set", text]
    with open(log, "ab") as out:
        out.write(f"\n--- lisearch serve starting {_now()} ---\n".encode())
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)  # fmt: skip
    return _wait_ready(settings, proc.pid, proc)


def _wait_ready(settings: Settings, pid: int, proc: subprocess.Popen[bytes] | None) -> Endpoint:
    deadline = time.monotonic() + settings.serve.start_timeout
    while time.monotonic() < deadline:
        endpoint = read_state(settings)
        if endpoint is not None and endpoint.ready and endpoint.pid == pid and alive(settings):
            return endpoint
        if proc is not None and proc.poll() is not None:
            raise EnvironmentProblem(
                f"The endpoint process ended at start (exit {proc.returncode}). Its last lines "
                f"({log_path(settings)}):\n{_tail(log_path(settings))}"
            )
        time.sleep(0.25)
    raise EnvironmentProblem(
        f"The endpoint (pid {pid}) did not answer within serve.start_timeout = {settings.serve.start_timeout} s. "
        f"See {log_path(settings)}; `lisearch serve --stop` ends it."
    )


def stop(settings: Settings, timeout: float = 60.0) -> Endpoint | None:
    """Stop the running endpoint (SIGTERM, then SIGKILL after ``timeout`` s) and remove its description; return
    what it was, or None when none was running."""
    state, endpoint = status(settings)
    if state == "crashed":
        state_path(settings).unlink(missing_ok=True)
        return None
    if endpoint is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(endpoint.pid, signal.SIGTERM)  # its own session: the JVM child goes too
    deadline = time.monotonic() + timeout
    while alive(settings) and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive(settings):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(endpoint.pid, signal.SIGKILL)
        while alive(settings):
            time.sleep(0.2)
    state_path(settings).unlink(missing_ok=True)
    return endpoint


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def describe(state: str, endpoint: Endpoint | None) -> str:
    """``lisearch serve --status`` text."""
    if endpoint is None or state == "stopped":
        return "lisearch serve: not running (start it with `lisearch serve`)."
    if state == "crashed":
        return (f"lisearch serve: crashed or killed (pid {endpoint.pid}, started {endpoint.started}); "
                "`lisearch serve` starts a new one.")  # fmt: skip
    return "\n".join([
        f"lisearch serve: {state} (pid {endpoint.pid}, since {endpoint.started})",
        f"  Thrift (JDBC/ODBC): {endpoint.jdbc_url}",
        f"  Spark Connect:      {endpoint.connect_url}",
        f"  warehouse:          {endpoint.warehouse}",
        f"  access:             {'read and write' if endpoint.allow_writes else 'read-only'}, "
        f"{'password/token required' if endpoint.auth else 'no password (loopback only)'}",
    ])  # fmt: skip


__all__ = ["Endpoint", "describe", "read_secret", "running_endpoint", "start", "status", "stop"]
