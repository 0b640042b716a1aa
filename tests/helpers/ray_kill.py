"""Inside a loopback-only namespace: start a Ray run of two jobs, kill the worker training one of
them (``kills`` times, each time once it has logged an epoch) -- or, with ``kills`` = -1, press
Ctrl-C in the driver once the first job is done -- wait for the run to end, and print what
happened as JSON. Used by tests/test_ray_executor.py."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

TARGET = "harness:baseline_cnn seed 0"  # the task name; Ray titles a busy worker ray::<task name>


def workers_running(name: str) -> list:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if title.startswith(f"ray::{name}"):
                found.append(int(entry.name))
    return found


def main(out: str, kills: int, epochs: int) -> None:
    log = Path(out + ".log")
    jobs = ["--model", "baseline_cnn", "deep_cnn"] if kills < 0 else ["--model", "baseline_cnn", "--seeds", "2"]
    command = [sys.executable, "-m", "harness", "run", *jobs, "--profile", "smoke", "--set", f"epochs={epochs}",
               "--executor", "ray", "--job-cpus", "1", "--out", out]
    with open(log, "w") as handle:
        # SIGINT at its default disposition (a background shell ignores it, and Python keeps it ignored)
        run = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    killed = []
    deadline = time.time() + 240
    try:
        while run.poll() is None and time.time() < deadline:
            if kills < 0 and not killed and "ray: 1/2 done" in log.read_text(errors="replace"):
                run.send_signal(signal.SIGINT)
                killed.append(run.pid)
            if len(killed) < kills:
                for pid in workers_running(TARGET):
                    trained = re.search(rf"{re.escape(TARGET)} pid={pid}\).*epoch 1:", log.read_text(errors="replace"))
                    if pid not in killed and trained:
                        os.kill(pid, signal.SIGKILL)
                        killed.append(pid)
            time.sleep(0.2)
        code = run.wait(timeout=max(1, deadline - time.time()))
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)  # the run's own group: driver, Ray, workers
    print(json.dumps({"returncode": code, "killed": killed, "log": log.read_text(errors="replace")}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
