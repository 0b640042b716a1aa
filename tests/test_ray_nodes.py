"""--executor ray over a cluster of several nodes on this machine (helpers/ray_nodes.py): a head and
two worker nodes, each in a mount namespace of its own, the worker nodes unable to see the driver's
results folder, decoded-image cache and weights folder; all inside a loopback-only network
namespace. The data must reach them through the object store, the weights as bytes, and every file
under --out is the driver's to write."""
from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import loopback
from helpers.timings import without_timings

HELPERS = Path(__file__).parent / "helpers"
ZOO = ["--model", "baseline_cnn", "mobilenetv3", "--profile", "smoke", "--set", "epochs=3"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster_here():
    loopback.require_ray()
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", "mount -t tmpfs tmpfs /mnt"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {probe.stderr.strip()}")


def weights_file(folder: Path) -> Path:
    """ImageNet-shaped weights for mobilenetv3's architecture (random values: the hand-off is tested)."""
    import timm
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    torch.manual_seed(1)
    state = timm.create_model("tf_mobilenetv3_small_100", pretrained=False, num_classes=1000).state_dict()
    path = folder / "tf_mobilenetv3_small_100.test_in1k.safetensors"
    save_file(state, str(path))
    return path


def on_nodes(root: Path, scenario: str, *options: str) -> dict:
    done = loopback.run([sys.executable, str(HELPERS / "ray_nodes.py"), str(root), scenario, *options],
                        env=loopback.ray_environment(), timeout=900)
    assert done.returncode == 0, done.stdout[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def local(out: Path, *options: str) -> None:
    done = subprocess.run([sys.executable, "-m", "harness", "run", *options, "--out", str(out)], capture_output=True,
                          text=True, timeout=600, env=loopback.ray_environment(OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr[-3000:]


def rows(folder: Path) -> list:
    with (folder / "history.csv").open() as handle:
        return [without_timings(row) for row in csv.DictReader(handle)]


def same_results(mine: Path, theirs: Path) -> None:
    a, b = (json.loads((folder / "metrics.json").read_text()) for folder in (mine, theirs))
    assert b["status"] == "ok" and b["accuracy"] == a["accuracy"] and rows(theirs) == rows(mine)


def said(log: str, line: str) -> set:
    """The jobs whose task printed ``line`` (every node of a cluster on one machine forwards the
    workers' lines, so each may appear more than once)."""
    return set(re.findall(rf"\(harness:(\S+) pid=\d+\).*{re.escape(line)}", log))


def scratch_folders() -> set:
    import tempfile

    return set(Path(tempfile.gettempdir()).glob("harness-ray-*"))


def test_a_zoo_over_two_nodes_that_cannot_see_the_drivers_disk_and_one_node_lost(cluster_here, tmp_path):
    """One cluster, one run: baseline_cnn and mobilenetv3 side by side, the node training baseline_cnn
    killed once it has logged an epoch; the job runs again on the node left."""
    before = scratch_folders()
    weights = weights_file(tmp_path / "hidden" / "weights")
    local(tmp_path / "local", *ZOO, "--weights-dir", str(weights.parent))
    outcome = on_nodes(tmp_path, "lose-node", *ZOO, "--weights-dir", str(weights.parent))
    log = outcome["log"]
    assert len(outcome["lost"]) == 1 and outcome["returncode"] == 0, log[-4000:]
    # one line per job says how its data and weights reached a node that cannot see the driver's disk
    assert said(log, "data: copied from the object store") == {"baseline_cnn", "mobilenetv3"}, log[-4000:]
    assert "mapped from the cache entry" not in log
    assert said(log, "weights: received as bytes from the object store") == {"mobilenetv3"}, log[-4000:]
    assert len(set(re.findall(r"\(harness:baseline_cnn pid=(\d+)\).*epoch 1:", log))) == 2  # a second try
    out = tmp_path / "hidden" / "lose-node"
    for model in ("baseline_cnn", "mobilenetv3"):  # every row complete, with the uninterrupted numbers
        same_results(tmp_path / "local" / model, out / model)
    assert json.loads((out / "mobilenetv3" / "metrics.json").read_text())["weights_source"]["sha256"]
    assert not list(out.rglob("*.tmp")) and not list(out.rglob("checkpoint.pt"))
    assert scratch_folders() <= before  # the tasks' scratch folders went with them


def test_a_node_lost_with_no_other_to_take_its_job_fails_its_row_and_resume_finishes_it(cluster_here, tmp_path):
    """One worker node, killed mid-job: no node is left that can take the job, so after --node-wait
    seconds its row fails in one line (the run does not wait for ever); with a new node, the same
    command with --resume finishes it with the uninterrupted numbers."""
    one = ["--model", "baseline_cnn", "--profile", "smoke", "--set", "epochs=3"]
    local(tmp_path / "local", *one)
    outcome = on_nodes(tmp_path, "lose-last-node", *one, "--node-wait", "5")
    log = outcome["log"]
    assert len(outcome["lost"]) == 1 and outcome["returncode"] == 1, log[-4000:]
    failed = [line for line in log.splitlines() if "failed: no node of the cluster can take it" in line]
    assert len(failed) == 1 and "baseline_cnn" in failed[0] and "--resume" in failed[0], log[-4000:]
    assert outcome["statuses"] == {"baseline_cnn": "failed"}
    assert outcome["resumed_returncode"] == 0, outcome["resumed_log"][-4000:]
    same_results(tmp_path / "local" / "baseline_cnn", tmp_path / "hidden" / "lose-last-node" / "baseline_cnn")
