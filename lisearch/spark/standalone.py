"""A Spark standalone cluster on loopback (one master, N workers) for tests and local experiments.

    with StandaloneCluster(workers=2) as cluster:
        subprocess.run(["spark-submit", "--master", cluster.master_url, ...])

The daemons are child processes in their own process group; :meth:`StandaloneCluster.stop` (also on exceptions
inside the ``with`` block) terminates them and waits. ``python -m lisearch.spark.standalone`` starts one in the
foreground until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType

import pyspark

from lisearch.errors import EnvironmentProblem


def spark_home() -> Path:
    """SPARK_HOME of the installed pyspark (holds the standalone scripts and jars)."""
    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StandaloneCluster:
    """Master and workers bound to 127.0.0.1 on free ports; logs under ``work_dir``."""

    def __init__(
        self,
        workers: int = 1,
        cores_per_worker: int = 1,
        memory_per_worker: str = "2g",
        work_dir: Path | None = None,
        master_port: int | None = None,
    ) -> None:
        self.workers = workers
        self.cores_per_worker = cores_per_worker
        self.memory_per_worker = memory_per_worker
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="lisearch-standalone-"))
        self.master_port = master_port or free_port()
        self.webui_port = free_port()
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def master_url(self) -> str:
        """The master's spark:// URL."""
        return f"spark://127.0.0.1:{self.master_port}"

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", SPARK_HOME=str(spark_home()))
        env.setdefault("PYSPARK_PYTHON", sys.executable)
        log = (self.work_dir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [str(spark_home() / "bin" / "spark-class"), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self.processes.append(proc)
        return proc

    def _state(self) -> dict[str, object]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.webui_port}/json/", timeout=5) as resp:
            return dict(json.load(resp))

    def start(self, timeout: float = 120.0) -> StandaloneCluster:
        """Start the master and the workers; wait until all workers are alive (or raise after ``timeout`` s)."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._spawn(
            "master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
            "--port", str(self.master_port), "--webui-port", str(self.webui_port),
        )  # fmt: skip
        for i in range(self.workers):
            self.start_worker(i)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if int(str(self._state().get("aliveworkers", 0))) >= self.workers:
                    return self
            except (OSError, ValueError):  # UI not up yet, or answering with an empty page while starting
                pass
            if any(p.poll() is not None for p in self.processes):
                break
            time.sleep(1.0)
        logs = "; ".join(str(p) for p in sorted(self.work_dir.glob("*.log")))
        self.stop()
        raise EnvironmentProblem(f"The standalone cluster did not come up within {timeout:.0f} s; see {logs}.")

    def start_worker(self, index: int) -> subprocess.Popen[bytes]:
        """Start worker ``index`` against the master."""
        work = self.work_dir / f"worker-{index}"
        work.mkdir(parents=True, exist_ok=True)
        return self._spawn(
            f"worker-{index}", "org.apache.spark.deploy.worker.Worker", self.master_url, "--host", "127.0.0.1",
            "--cores", str(self.cores_per_worker), "--memory", self.memory_per_worker,
            "--webui-port", str(free_port()), "--work-dir", str(work),
        )  # fmt: skip

    def kill_worker(self, index: int) -> None:
        """Kill worker ``index`` (and its executors) abruptly, as a failed machine would."""
        proc = self.processes[1 + index]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def stop(self) -> None:
        """Stop every worker and the master."""
        for proc in reversed(self.processes):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)

    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> int:  # pragma: no cover - interactive helper
    """Run a standalone cluster on 127.0.0.1 until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Run a Spark standalone cluster on 127.0.0.1 until Ctrl-C.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1)
    parser.add_argument("--memory", default="2g")
    parser.add_argument("--port", type=int, default=7077)
    args = parser.parse_args()
    with StandaloneCluster(args.workers, args.cores, args.memory, master_port=args.port) as cluster:
        print(f"master {cluster.master_url}, UI http://127.0.0.1:{cluster.webui_port}, logs {cluster.work_dir}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
