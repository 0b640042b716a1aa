"""The allocator fix is chosen correctly and actually reaches a training process."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from harness import allocator


def test_prefers_tcmalloc(monkeypatch):
    monkeypatch.setattr(allocator, "find_tcmalloc", lambda: "/lib/libtcmalloc_minimal.so.4")
    env = allocator.allocator_env({"LD_PRELOAD": "/other.so"})
    assert env["LD_PRELOAD"] == "/lib/libtcmalloc_minimal.so.4:/other.so"
    assert env["HARNESS_ALLOCATOR"] == "tcmalloc"


def test_falls_back_to_glibc_tunables(monkeypatch):
    monkeypatch.setattr(allocator, "find_tcmalloc", lambda: None)
    env = allocator.allocator_env({})
    assert "glibc.malloc.mmap_threshold=4294967296" in env["GLIBC_TUNABLES"]
    assert env["HARNESS_ALLOCATOR"] == "glibc-tunables"


def test_opt_out_and_no_second_reexec():
    assert allocator.allocator_env({"HARNESS_ALLOCATOR": "system"}) is None
    assert allocator.allocator_env({"HARNESS_ALLOCATOR": "tcmalloc"}) is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fix applies on Linux only")
def test_console_script_trains_under_the_fix(tmp_path):
    script = shutil.which("harness", path=os.path.dirname(sys.executable))
    assert script, "the harness console script is installed beside this python"
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_ALLOCATOR"}
    subprocess.run([script, "run", "--model", "baseline_cnn", "--profile", "smoke", "--set", "epochs=1",
                    "--out", str(tmp_path)], check=True, env=env, capture_output=True)
    metrics = json.loads((tmp_path / "baseline_cnn" / "metrics.json").read_text())
    # read by the training process from its own memory map / start-up environment, not the label
    expected = "tcmalloc" if allocator.find_tcmalloc() else "glibc-tunables"
    assert metrics["environment"]["allocator"] == expected


def test_the_recorded_allocator_is_read_from_the_process_itself():
    """A process started with the label alone, and no preload or tunables, is recorded as 'system'."""
    code = "from harness.allocator import allocator_in_use; print(allocator_in_use())"
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "GLIBC_TUNABLES")}
    plain = subprocess.run([sys.executable, "-c", code], env={**env, "HARNESS_ALLOCATOR": "tcmalloc"},
                           capture_output=True, text=True, check=True)
    assert plain.stdout.strip() == "system"
    tuned = subprocess.run([sys.executable, "-c", code], env={**env, "GLIBC_TUNABLES": allocator.GLIBC_TUNABLES},
                           capture_output=True, text=True, check=True)
    assert tuned.stdout.strip() == "glibc-tunables"
    if allocator.find_tcmalloc():
        preloaded = subprocess.run([sys.executable, "-c", code], env={**env, "LD_PRELOAD": allocator.find_tcmalloc()},
                                   capture_output=True, text=True, check=True)
        assert preloaded.stdout.strip() == "tcmalloc"
