"""PySpark's worker daemon (:mod:`pyspark.daemon`) without one false alarm, for ``spark.python.daemon.module``.

Spark reaps a Python worker that has been idle for a minute by closing its socket; since PySpark 4.1 the worker,
waiting for its next task, then fails to flush and the daemon prints a ``BrokenPipeError`` traceback to the job's
stderr (SPARK-54344). Every lisearch run that pauses between Spark stages (training, reports) printed two. Here
the worker exits quietly in that case only: a flush that fails because the JVM closed the socket. A task that
fails still fails in the JVM, which reports it. Everything else is PySpark's daemon as it is.

Set by the local and standalone profiles (``spark.python.daemon.module = "lisearch.spark.daemon"``); the module
must be importable by the executors' Python, as the kernels already are.
"""

from __future__ import annotations

import socket
from typing import Any

from pyspark import daemon

_pyspark_worker = daemon.worker


def worker(sock: socket.socket, authenticated: bool) -> Any:
    """:func:`pyspark.daemon.worker`; a socket closed by the JVM (a reaped idle worker) ends it with code 1."""
    try:
        return _pyspark_worker(sock, authenticated)
    except (BrokenPipeError, ConnectionResetError):
        return 1  # the manager then waits for the socket to close and ends this worker process


daemon.worker = worker

if __name__ == "__main__":
    daemon.manager()
