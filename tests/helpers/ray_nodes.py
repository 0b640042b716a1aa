"""A Ray cluster of several nodes on one machine, for tests: run inside a loopback-only network
namespace (helpers/loopback.py). The head and each worker node run in a mount namespace of their
own; every worker node has ``hidden`` covered by an empty tmpfs, so its workers cannot see what the
driver keeps there (results, decoded-image cache, weights), and its own HOME and cache folders. Every process a node started is stopped by its mount namespace, never by name.

Used as a script by tests/test_ray_nodes.py: ``python ray_nodes.py ROOT SCENARIO`` prints what
happened as JSON."""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PORT = 6391
RAY = str(Path(sys.executable).with_name("ray"))


def namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


class Cluster:
    def __init__(self, root: Path, hidden: Path, workers: int):
        self.root, self.hidden, self.workers = root, hidden, workers
        self.nodes = []  # (Popen, mount namespace) of the head, then each worker node

    def env(self, name: str) -> dict:
        home = self.root / "nodes" / name
        for sub in ("home", "cache"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        # the temp folder stays the machine's: Ray keeps one session folder per machine there
        return dict(os.environ, HOME=str(home / "home"), HARNESS_CACHE_DIR=str(home / "cache"),
                    RAY_USAGE_STATS_ENABLED="0")

    def spawn(self, name: str, script: str, timeout: float = 180) -> None:
        """Start a node and wait until its ``ray start`` says the node is up."""
        env = self.env(name)
        log = open(self.root / "nodes" / f"{name}.log", "w")
        process = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                                   env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(100):  # the namespace is the process's once unshare has exec'd sh
            if namespace(process.pid) not in (None, namespace(os.getpid())):
                break
            time.sleep(0.05)
        self.nodes.append((process, namespace(process.pid)))
        deadline = time.time() + timeout
        while "Ray runtime started" not in (self.root / "nodes" / f"{name}.log").read_text(errors="replace"):
            if process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{name} did not start: " + (self.root / "nodes" / f"{name}.log").read_text()[-2000:])
            time.sleep(0.5)

    COMMON = "--node-ip-address=127.0.0.1 --disable-usage-stats --block"

    def start(self) -> None:
        self.hidden.mkdir(parents=True, exist_ok=True)
        self.spawn("head", f"exec {RAY} start --head --port={PORT} --num-cpus=0 --include-dashboard=false {self.COMMON}")
        for _ in range(self.workers):
            self.add_worker()
        self.wait_for(1 + self.workers)  # registered with the head, as the driver will see them

    def add_worker(self) -> None:
        """One more worker node of one CPU, which cannot see ``hidden``."""
        name = f"node-{len(self.nodes) - 1}"
        self.spawn(name, f"mount -t tmpfs tmpfs {shlex.quote(str(self.hidden))} && "
                         f"exec {RAY} start --address=127.0.0.1:{PORT} --num-cpus=1 {self.COMMON}")

    def alive(self) -> int:
        probe = subprocess.run([sys.executable, "-c", (
            "import ray; ray.init(address='127.0.0.1:%d', logging_level='ERROR', log_to_driver=False); "
            "print(sum(1 for n in ray.nodes() if n['Alive']))") % PORT], capture_output=True, text=True,
            env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0"), timeout=120)
        return int(probe.stdout.strip().splitlines()[-1]) if probe.returncode == 0 and probe.stdout.strip() else 0

    def wait_for(self, count: int, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while self.alive() < count:
            if time.time() > deadline:
                raise RuntimeError(f"the cluster did not reach {count} nodes")
            time.sleep(1)

    def node_of(self, pid: int) -> int | None:
        space = namespace(pid)
        return next((i for i, (_, ns) in enumerate(self.nodes) if ns == space), None)

    def kill_node(self, index: int) -> int:
        """SIGKILL every process of node ``index`` (its mount namespace's); how many there were."""
        space = self.nodes[index][1]
        killed = 0
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and namespace(int(entry.name)) == space:
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                    killed += 1
                except OSError:
                    pass
        self.nodes[index][0].wait(timeout=30)
        return killed

    def stop(self) -> None:
        for index in reversed(range(len(self.nodes))):
            self.kill_node(index)
        # `ray start --head` names its cluster as this machine's current one; a later ray.init()
        # without an address would try to join it
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if current.is_file() and f":{PORT}" in current.read_text():
            current.unlink()


def harness(root: Path, out: str, *options: str, log: Path) -> subprocess.Popen:
    """The driver, on this machine's side of the tmpfs, with its own HOME and cache under ``hidden``."""
    env = dict(os.environ, HOME=str(root / "hidden" / "home"), HARNESS_CACHE_DIR=str(root / "hidden" / "cache"),
               RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "harness", "run", *options, "--executor", "ray", "--address",
               f"127.0.0.1:{PORT}", "--job-cpus", "1", "--out", out]
    return subprocess.Popen(command, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def wait(run: subprocess.Popen, timeout: float = 600) -> int:
    """The driver's exit status; a driver still running after ``timeout`` is killed with its session."""
    try:
        return run.wait(timeout=timeout)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()


def lose_a_node(cluster: Cluster, run: subprocess.Popen, log: Path, target: str) -> list:
    """Once ``target``'s worker has logged its first epoch, kill the node it runs on."""
    lost = []
    deadline = time.time() + 300
    while run.poll() is None and time.time() < deadline:
        if not lost:
            found = re.search(rf"\({re.escape(target)} pid=(\d+)\).*epoch 1:", log.read_text(errors="replace"))
            node = cluster.node_of(int(found.group(1))) if found else None
            if node:
                cluster.kill_node(node)
                lost.append(node)
        time.sleep(0.2)
    return lost


def statuses(out: Path) -> dict:
    return {str(path.parent.relative_to(out)): json.loads(path.read_text())["status"] for path in out.rglob("metrics.json")}


def resume_on_a_new_node(cluster: Cluster, root: Path, out: Path, options: tuple, outcome: dict) -> None:
    """What the lost node's jobs left, then a node added and the same command with --resume."""
    outcome["statuses"] = statuses(out)
    cluster.add_worker()
    cluster.wait_for(2)  # the head and the new node
    log = root / "resumed.log"
    outcome["resumed_returncode"] = wait(harness(root, str(out), *options, "--resume", log=log))
    outcome["resumed_log"] = log.read_text(errors="replace")


def main(root: str, scenario: str, *options: str) -> None:
    """lose-node: two worker nodes, one lost mid-job; lose-last-node: one worker node, lost mid-job,
    then a new one and --resume."""
    root = Path(root)
    hidden = root / "hidden"
    out = hidden / scenario
    cluster = Cluster(root, hidden, workers=1 if scenario == "lose-last-node" else 2)
    outcome = {}
    try:
        cluster.start()
        log = root / f"{scenario}.log"
        run = harness(root, str(out), *options, log=log)
        try:
            if scenario in ("lose-node", "lose-last-node"):
                outcome["lost"] = lose_a_node(cluster, run, log, "harness:baseline_cnn")
        finally:
            outcome["returncode"] = wait(run)
        outcome["log"] = log.read_text(errors="replace")
        if scenario == "lose-last-node":
            resume_on_a_new_node(cluster, root, out, options, outcome)
    finally:
        cluster.stop()
    print(json.dumps(outcome))


if __name__ == "__main__":
    main(*sys.argv[1:])
