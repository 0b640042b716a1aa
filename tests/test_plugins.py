"""Plugins are found through the ``harness`` entry-point group; a broken one is reported alone."""
import json
from pathlib import Path

import pytest

from harness import plugin_registry
from harness.cli import main
from harness.errors import HarnessError

from conftest import install_plugin

TINY_PLUGIN = '''
import torch.nn as nn
from harness import ModelSpec, Recipe, Stage, hookimpl


@hookimpl
def register_models(register):
    register(ModelSpec(
        name="tiny_linear",
        family="cnn",
        input_size=8,
        build=lambda num_classes: nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, num_classes)),
        recipe=Recipe(stages=[Stage(name="train", epochs=1, batch_size=32)]),
        description="a test plugin",
    ))
'''


def test_builtin_plugins_come_through_entry_points():
    registry = plugin_registry.load()
    assert {"baseline_cnn", "deep_cnn"} <= set(registry.models)
    assert registry.models["baseline_cnn"].plugin == "cnn"
    assert registry.models["baseline_cnn"].package == "harness"
    assert "cifar10" in registry.datasets
    assert registry.problems == []


def test_third_party_plugin_is_discovered_and_trains(site, tmp_path, capsys):
    install_plugin(site, "harness_tiny", TINY_PLUGIN, "tiny")
    registry = plugin_registry.load()
    assert registry.models["tiny_linear"].package == "harness-testplugin"
    assert main(["list", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert listed["tiny_linear"]["plugin"] == "tiny"
    out = tmp_path / "out"
    assert main(["run", "--model", "tiny_linear", "--profile", "smoke", "--out", str(out)]) == 0
    metrics = json.loads((out / "tiny_linear" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and 0 <= metrics["accuracy"] <= 1


def test_plugin_that_raises_on_import_is_reported_and_others_work(site, capsys):
    install_plugin(site, "harness_broken", "raise RuntimeError('boom at import')\n", "broken", dist="harness-broken")
    registry = plugin_registry.load()
    assert "baseline_cnn" in registry.models
    assert len(registry.problems) == 1
    assert "plugin 'broken'" in registry.problems[0] and "boom at import" in registry.problems[0]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "broken" in err


def test_misspelled_hook_is_an_error_naming_the_close_hook(site, capsys, tmp_path):
    source = "from harness import hookimpl\n\n@hookimpl\ndef register_model(register):\n    pass\n"
    install_plugin(site, "harness_typo", source, "typo", dist="harness-typo")
    registry = plugin_registry.load(report=False)  # recorded, the other plugins loaded
    assert registry.errors == ["plugin 'typo' (harness-typo) implements 'register_model', which is not a hook; "
                               "did you mean 'register_models'? (see docs/plugins.md)"]
    assert "baseline_cnn" in registry.models
    with pytest.raises(HarnessError, match="did you mean 'register_models'"):
        plugin_registry.load()
    for command in (["list"], ["run", "--model", "baseline_cnn", "--profile", "smoke", "--out", str(tmp_path)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "did you mean 'register_models'" in err, err
    assert not (tmp_path / "baseline_cnn").exists()


def test_plugin_that_fails_to_register_is_isolated(site):
    source = TINY_PLUGIN.replace('name="tiny_linear"', 'name="baseline_cnn"')  # a name already taken
    install_plugin(site, "harness_dupe", source, "zz_dupe", dist="harness-dupe")
    registry = plugin_registry.load(report=False)
    assert registry.models["baseline_cnn"].plugin == "cnn"
    assert any("zz_dupe" in line and "already registered" in line for line in registry.problems)


def test_a_connection_beyond_loopback_fails_the_test(pytester):
    """The suite's guard: a test that opens a socket to a non-loopback address fails, named."""
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(test_net="""
        import socket

        def test_reaches_out():
            # a UDP "connection" sends no packet even if the guard were broken: nothing leaves
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).connect(("192.0.2.1", 80))
    """)
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*opened a network connection to 192.0.2.1:80; tests reach loopback only*"])


def test_warnings_go_through_the_harness_logger_from_rank_0_only(site, capsys, monkeypatch):
    import logging

    from harness import distributed

    install_plugin(site, "harness_broken", "raise RuntimeError('boom at import')\n", "broken", dist="harness-broken")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("harness").addHandler(handler)
    try:
        plugin_registry.load()
        assert [r.levelname for r in records] == ["WARNING"] and "boom at import" in records[0].getMessage()
        assert capsys.readouterr().err.startswith("harness: warning: plugin 'broken'")
        monkeypatch.setattr(distributed, "is_main", lambda: False)  # another rank of a data-parallel run
        plugin_registry.load()
        assert capsys.readouterr().err == ""
    finally:
        logging.getLogger("harness").removeHandler(handler)
