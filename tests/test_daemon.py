"""lisearch.spark.daemon: PySpark's worker daemon without the traceback of a reaped idle worker (no JVM here)."""

from __future__ import annotations

import pytest


def test_worker_daemon_ends_a_reaped_worker_quietly(monkeypatch: pytest.MonkeyPatch):
    """lisearch.spark.daemon: a flush that fails because the JVM closed an idle worker's socket ends the worker
    with code 1 (no traceback); any other failure of PySpark's worker still propagates, and results pass through.
    (The full behaviour, a worker reaped after 60 s idle without a traceback, was checked by hand: see the module.)"""
    import lisearch.spark.daemon as quiet

    def reaped(sock, authenticated):  # type: ignore[no-untyped-def]
        raise BrokenPipeError(32, "Broken pipe")

    def broken(sock, authenticated):  # type: ignore[no-untyped-def]
        raise ValueError("a real failure")

    from pyspark import daemon

    assert daemon.worker is quiet.worker  # the manager looks the name up at each call
    monkeypatch.setattr(quiet, "_pyspark_worker", reaped)
    assert quiet.worker(None, True) == 1  # type: ignore[arg-type]
    monkeypatch.setattr(quiet, "_pyspark_worker", broken)
    with pytest.raises(ValueError, match="a real failure"):
        quiet.worker(None, True)  # type: ignore[arg-type]
    monkeypatch.setattr(quiet, "_pyspark_worker", lambda sock, authenticated: 0)
    assert quiet.worker(None, False) == 0  # type: ignore[arg-type]
