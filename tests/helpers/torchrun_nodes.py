"""Inside a loopback-only namespace: two torchrun agents, each a "node" of one process
(``--nnodes 2``, a c10d rendezvous on 127.0.0.1), running ``harness ARGS``; with ``--kill-after
LINE`` the second agent and its process are killed once the first agent prints LINE. Prints each
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


def main(argv: list) -> None:
    kill_after = None
    if argv[:1] == ["--kill-after"]:
        kill_after, argv = argv[1], argv[2:]
    port = free_port()
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", HARNESS_ALLOCATOR="system", OMP_NUM_THREADS="1")
    agents, logs = [], []
    for node in range(2):
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
                os.killpg(agents[1].pid, signal.SIGKILL)  # the node: its agent and its process
                killed = True
            time.sleep(0.2)
    finally:
        for agent in agents:
            if agent.poll() is None:
                os.killpg(agent.pid, signal.SIGKILL)
            agent.wait()
    print(json.dumps({"codes": [agent.returncode for agent in agents], "killed": killed,
                      "logs": [open(log.name).read() for log in logs]}))


if __name__ == "__main__":
    main(sys.argv[1:])
