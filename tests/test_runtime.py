"""The allocator fix is chosen correctly and actually reaches a training process."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from harness import runtime


def test_prefers_tcmalloc(monkeypatch):
    monkeypatch.setattr(runtime, "find_tcmalloc", lambda: "/lib/libtcmalloc_minimal.so.4")
    env = runtime.allocator_env({"LD_PRELOAD": "/other.so"})
    assert env["LD_PRELOAD"] == "/lib/libtcmalloc_minimal.so.4:/other.so"
    assert env["HARNESS_ALLOCATOR"] == "tcmalloc"


def test_falls_back_to_glibc_tunables(monkeypatch):
    monkeypatch.setattr(runtime, "find_tcmalloc", lambda: None)
    env = runtime.allocator_env({})
    assert "glibc.malloc.mmap_threshold=4294967296" in env["GLIBC_TUNABLES"]
    assert env["HARNESS_ALLOCATOR"] == "glibc-tunables"


def test_opt_out_and_no_second_reexec():
    assert runtime.allocator_env({"HARNESS_ALLOCATOR": "system"}) is None
    assert runtime.allocator_env({"HARNESS_ALLOCATOR": "tcmalloc"}) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fix applies on Linux only")
def test_console_script_trains_under_the_fix(tmp_path):
    script = shutil.which("harness", path=os.path.dirname(sys.executable))
    assert script, "the harness console script is installed beside this python"
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_ALLOCATOR"}
    subprocess.run([script, "run", "--model", "baseline_cnn", "--profile", "smoke", "--set", "epochs=1",
                    "--out", str(tmp_path)], check=True, env=env, capture_output=True)
    metrics = json.loads((tmp_path / "baseline_cnn" / "metrics.json").read_text())
    assert metrics["environment"]["allocator"] in ("tcmalloc", "glibc-tunables")
