"""Locks that keep two jobs from writing the same run (or table) at once, taken before Spark starts.

A lock is an advisory ``flock`` on a file under ``<home>/locks/``: the kernel releases it when the holding process
ends, however it ends (killed, crashed), so a stopped job never leaves a stale lock behind and ``--resume`` can
always go on. The screen takes its run id's lock exclusively (it replaces the run's rows); jobs that read a run
(narrow, shortlist, score-measured) share it, so they run beside each other but never while the run is screened,
and take their output table's lock for that run exclusively. A refused job has written nothing: the message names
the job that holds the lock. On a cluster the home is shared storage; ``flock`` works across hosts on NFS v4 and on
most cluster file systems (not on object stores, which lisearch's home cannot be anyway).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from lisearch.errors import InputError
from lisearch.run_ids import check_run_id


def _lock_file(home: Path, key: str) -> Path:
    folder = home / "locks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"Cannot create the lock folder {folder} ({exc.strerror or exc}). Point paths.home (LISEARCH_HOME) at a "
            "writable folder."
        ) from None
    return folder / f"{key}.lock"


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another lisearch job"
    return f"`lisearch {info.get('job')}` (pid {info.get('pid')} on {info.get('host')}, since {info.get('since')})"


@contextlib.contextmanager
def job_lock(home: Path, key: str, job: str, exclusive: bool = True, what: str | None = None) -> Iterator[None]:
    """Hold the lock ``key`` (a file name stem such as ``run-default``) for the ``with`` block: exclusively (one
    holder) or shared (many shared holders, no exclusive one). Raises InputError at once, without waiting, when
    another process holds it in a conflicting way; ``what`` names the locked thing in that message."""
    path = _lock_file(home, key)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise InputError(
                f"{what or key} is in use by {_holder(path)}. Wait until that job ends (or stop it) and run "
                f"`lisearch {job}` again, or choose another run id. Nothing was written."
            ) from None
        if exclusive:
            info = {"job": job, "pid": os.getpid(), "host": socket.gethostname(),
                    "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}  # fmt: skip
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        yield
    finally:
        if exclusive:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
        os.close(fd)  # releases the lock


def lock_held(home: Path, key: str) -> bool:
    """True when some process holds the lock ``key`` exclusively now (e.g. a running ``lisearch serve``)."""
    path = home / "locks" / f"{key}.lock"
    if not path.is_file():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        return True
    finally:
        os.close(fd)  # releases the probe's lock
    return False


@contextlib.contextmanager
def run_lock(home: Path, run_id: str, job: str, exclusive: bool) -> Iterator[None]:
    """The lock of screen run ``run_id``: the screen holds it exclusively, jobs that read the run share it."""
    with job_lock(home, f"run-{check_run_id(run_id)}", job, exclusive, what=f"The screen run {run_id!r}"):
        yield


@contextlib.contextmanager
def output_lock(home: Path, table: str, run_id: str, job: str) -> Iterator[None]:
    """The exclusive lock of one run's rows in the table ``table`` (e.g. ``stable_oxides``), held by the job that
    writes them."""
    key = f"table-{table}-{check_run_id(run_id)}"
    with job_lock(home, key, job, True, what=f"The rows of run {run_id!r} in `{table}`"):
        yield


@contextlib.contextmanager
def downstream_lock(home: Path, run_id: str, table: str, job: str) -> Iterator[None]:
    """What a job that reads screen run ``run_id`` and writes its rows of ``table`` holds: the run's lock shared
    (no screen of that id meanwhile) and ``table``'s lock for the run exclusively."""
    with run_lock(home, run_id, job, exclusive=False), output_lock(home, table, run_id, job):
        yield


__all__ = ["downstream_lock", "job_lock", "lock_held", "output_lock", "run_lock"]
