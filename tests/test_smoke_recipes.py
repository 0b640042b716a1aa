"""The smoke profile's promise: both CNNs learn on the shipped sample, clear of the 0.30 line, in
float32 and, where the CPU has native bf16, in bf16 (``--amp auto`` picks bf16 there)."""
import json

import pytest

from harness.accel import cpu_has_native_bf16
from harness.cli import main

pytestmark = pytest.mark.slow

MARGIN = 0.33  # 0.30 and three points; measured minima over seeds 0-2 are 0.358 (deep_cnn) and 0.368


@pytest.mark.parametrize("amp", ["--no-amp", "--amp"])
def test_both_cnns_clear_the_smoke_line(tmp_path, amp):
    if amp == "--amp" and not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bf16: smoke runs in float32 here")
    assert main(["run", "--model", "baseline_cnn", "deep_cnn", "--profile", "smoke", amp, "--out", str(tmp_path)]) == 0
    for model in ("baseline_cnn", "deep_cnn"):
        accuracy = json.loads((tmp_path / model / "metrics.json").read_text())["accuracy"]
        assert accuracy >= MARGIN, (model, amp, accuracy)
