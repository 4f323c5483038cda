"""A throw-away local Ray cluster (``ray start``) for tests and benchmarks, that stops only itself.

``ray stop`` kills every Ray process of the user on the machine, other people's
clusters included. This cluster marks its processes instead: each node starts with
``MCBR_RAY_CLUSTER=<token>`` in its environment, which every Ray process it starts
inherits, and ``stop`` kills exactly the processes carrying that token. Every port
is chosen free, and the cluster keeps its files in its own ``--temp-dir``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).with_name("ray")
MARKER = "MCBR_RAY_CLUSTER"
_MAX_TEMP = 40  # Ray puts Unix sockets ~70 characters below its temp dir; Linux allows 107


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """A head node and optional worker nodes on this machine, each with ``num_cpus`` CPUs.

    Parameters
    ----------
    folder
        Where the cluster keeps its temp dir (a short folder in /tmp is used instead
        when this one would make Ray's socket paths too long).
    object_store_mb
        Shared-memory object store per node (small: results are small).
    """

    def __init__(self, folder: Path, *, object_store_mb: int = 80) -> None:
        self.token = uuid.uuid4().hex
        folder.mkdir(parents=True, exist_ok=True)
        self._own_temp = len(str(folder / "r")) > _MAX_TEMP
        self.temp = Path(tempfile.mkdtemp(prefix="mcbr-ray-")) if self._own_temp else folder / "r"
        self.temp.mkdir(exist_ok=True)
        self.object_store = object_store_mb * 2**20
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes = 0
        self.env = dict(os.environ)
        pythonpath = [str(ROOT), *filter(None, self.env.get("PYTHONPATH", "").split(os.pathsep))]
        self.env.update(
            {MARKER: self.token, "PYTHONPATH": os.pathsep.join(pythonpath), "RAY_USAGE_STATS_ENABLED": "0"}
        )

    def _node_ports(self) -> list[str]:
        return [
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={free_port()}",
        ]

    def _ray_start(self, *args: str) -> None:
        common = [
            "--node-ip-address=127.0.0.1",
            f"--object-store-memory={self.object_store}",
            "--disable-usage-stats",
        ]
        out = subprocess.run(
            [str(RAY), "start", *args, *common, *self._node_ports()],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if out.returncode:
            self.stop()
            raise RuntimeError(f"ray start failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        self.nodes += 1

    def start(self, num_cpus: int = 1) -> LocalCluster:
        """Start the head node."""
        self._ray_start(
            "--head",
            f"--port={self.port}",
            f"--num-cpus={num_cpus}",
            "--include-dashboard=false",
            f"--dashboard-port={free_port()}",
            f"--temp-dir={self.temp}",
        )
        return self

    def add_node(self, num_cpus: int = 1) -> None:
        """Start one more worker node on this machine."""
        self._ray_start(f"--address={self.address}", f"--num-cpus={num_cpus}")

    def wait_for_cpus(self, cpus: int, timeout: float = 60.0) -> None:
        """Wait until the cluster reports ``cpus`` CPUs (a new node takes a moment to register)."""
        import ray

        deadline = time.monotonic() + timeout
        while ray.cluster_resources().get("CPU", 0) < cpus:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the cluster has {ray.cluster_resources().get('CPU', 0)} CPUs, not {cpus}"
                )
            time.sleep(0.2)

    def processes(self) -> list[int]:
        """Pids of this cluster's processes (and only this cluster's).

        A process is the cluster's when its environment carries the cluster's token,
        or when it holds a file open in the cluster's temp dir (Ray's agents and
        workers overwrite their environment with their process title, but every
        one of them keeps its log files open there).
        """
        mine = f"{MARKER}={self.token}".encode()
        temp = str(self.temp.resolve()) + "/"
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if mine in (entry / "environ").read_bytes().split(b"\0") or any(
                    os.readlink(fd).startswith(temp) for fd in (entry / "fd").iterdir()
                ):
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids

    def worker_pids(self) -> list[int]:
        """Pids of the Ray worker processes running tasks (``ray::<task>``, not Ray's own agents)."""
        out = []
        for pid in self.processes():
            try:
                name = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if name.startswith(b"ray::") and not name.endswith(b"Agent") and state != "Z":
                out.append(pid)
        return out

    def stop(self) -> None:
        """Kill this cluster's processes (found by its token) and remove its files."""
        for _ in range(50):
            pids = self.processes()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.1)
        if self._own_temp:
            shutil.rmtree(self.temp, ignore_errors=True)
