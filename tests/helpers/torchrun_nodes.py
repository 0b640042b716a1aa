"""Inside a loopback-only namespace: two torchrun agents, each a "node" of one process
(``--nnodes 2``, a c10d rendezvous on 127.0.0.1), running ``harness ARGS``; with ``--kill-after
LINE`` the second agent and its process are killed once the first agent prints LINE (the first
hosts the rendezvous store: it is started alone until the store listens). Prints each
agent's exit code and output as JSON. Used by tests/test_distributed.py."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, seconds: float = 120) -> None:
    """Until something listens on ``port`` (the first agent's rendezvous store)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds} s")


def process_tree(root: int) -> list:
    """``root`` and every process below it. torchrun starts its workers in sessions of their own,
    so killing the agent's process group would leave its worker training: a lost node loses both."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # ended while listed
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        tree += children
        frontier = children
    return tree


def kill_tree(root: int) -> None:
    for pid in process_tree(root):  # the whole tree listed first, then killed: none is reparented unseen
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main(argv: list) -> None:
    kill_after = None
    if argv[:1] == ["--kill-after"]:
        kill_after, argv = argv[1], argv[2:]
    port = free_port()
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", HARNESS_ALLOCATOR="system", OMP_NUM_THREADS="1")
    agents, logs = [], []
    for node in range(2):
        if node == 1:
            wait_for(port)  # the first node hosts the rendezvous store: the second is the one lost
        logs.append(open(f"{argv[-1]}.node{node}.log", "w+"))
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=1",
                   "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=harness-test",
                   "--max-restarts=0", "-m", "harness", *argv]
        agents.append(subprocess.Popen(command, env=env, stdout=logs[-1], stderr=subprocess.STDOUT,
                                       start_new_session=True))
    killed = False
    deadline = time.time() + 600
    try:
        while any(agent.poll() is None for agent in agents) and time.time() < deadline:
            if kill_after and not killed and kill_after in open(logs[0].name).read():
                kill_tree(agents[1].pid)  # the node: its agent and its worker
                killed = True
            time.sleep(0.2)
    finally:
        for agent in agents:
            if agent.poll() is None:
                kill_tree(agent.pid)
            agent.wait()
    print(json.dumps({"codes": [agent.returncode for agent in agents], "killed": killed,
                      "logs": [open(log.name).read() for log in logs]}))


if __name__ == "__main__":
    main(sys.argv[1:])
