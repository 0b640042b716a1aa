"""Run a command inside a network namespace of its own that has only loopback.

Ray binds to the machine's interface address when there is one; nothing the tests start may reach
any address but loopback, so every test that starts Ray runs it in here (``unshare -n``, then
``lo`` brought up: Ray then uses 127.0.0.1)."""
from __future__ import annotations

import functools
import os
import shlex
import shutil
import subprocess
import sys


@functools.lru_cache(maxsize=1)
def unavailable() -> str | None:
    """Why a loopback-only namespace cannot be made here, or None when it can."""
    if not sys.platform.startswith("linux") or not shutil.which("unshare") or not shutil.which("ip"):
        return "needs Linux with unshare and ip (util-linux, iproute2)"
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up && ! ip -o link | grep -v ' lo:'"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make a loopback-only network namespace here (unshare -n: {probe.stderr.strip() or 'refused'})"
    return None


def require_ray() -> None:
    """Skip the calling test, with the reason, where Ray is not installed or the namespace cannot be made."""
    import pytest

    pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
    why = unavailable()
    if why:
        pytest.skip(why)


def ray_environment(**extra) -> dict:
    """The environment for a Ray run in the namespace: no usage statistics, no dashboard traffic."""
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_DISABLE_IMPORT_WARNING="1", **extra)
    return env


def run(argv: list, *, env: dict, timeout: float, cwd=None) -> subprocess.CompletedProcess:
    """``argv`` in a new loopback-only namespace; its process group is killed if it outlives ``timeout``."""
    script = "ip link set lo up && exec " + shlex.join(argv)
    process = subprocess.Popen(["unshare", "-n", "sh", "-c", script], env=env, cwd=cwd, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)  # the group this call made: the run and whatever it started
        output, _ = process.communicate()
        raise AssertionError(f"{shlex.join(argv)} ran over {timeout}s:\n{output[-4000:]}") from None
    return subprocess.CompletedProcess(argv, process.returncode, output, "")
