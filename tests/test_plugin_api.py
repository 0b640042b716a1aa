"""The plugin API is one place: the built-in plugins and the Lite0 package import from ``harness``,
``harness.toolkit``, ``harness.recipes`` and ``harness.executors`` and from no other harness module,
so what they use is what any outside plugin can rely on."""
import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import harness.toolkit

PUBLIC = {"harness", "harness.toolkit", "harness.recipes", "harness.executors"}
PLUGINS = Path(__file__).resolve().parents[1] / "plugins"


def harness_imports(path: Path) -> set:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "harness":
            found.add(node.module)
            # ``from harness import distributed`` imports a module, not a name of the API
            found |= {f"{node.module}.{a.name}" for a in node.names if is_module(f"{node.module}.{a.name}")}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "harness"}
    return found


def is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a name inside a module, not a module
        return False


def test_built_in_plugins_use_the_public_api_only():
    used = {str(p.relative_to(PLUGINS)): harness_imports(p) - PUBLIC for p in PLUGINS.rglob("*.py")}
    assert {path: modules for path, modules in used.items() if modules} == {}


def test_every_toolkit_name_resolves_and_light_names_need_no_torch():
    for name in harness.toolkit.__all__:
        assert getattr(harness.toolkit, name) is not None, name
    code = "import sys; from harness.toolkit import HarnessError, improved, cached_images; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_the_core_names_no_registered_model_and_no_dataset():
    """Models and datasets are plugins: harness/ knows none of them by name (their figures, defaults
    and file names live in their plugins), so an outside plugin is on the same footing."""
    import re

    from harness import plugin_registry

    registry = plugin_registry.load(report=False)
    names = sorted({*registry.models, *registry.datasets}, key=len, reverse=True)
    pattern = re.compile(r"cifar|(?<![\w])(" + "|".join(map(re.escape, names)) + r")(?![\w])", re.IGNORECASE)
    core = Path(__file__).resolve().parents[1] / "harness"
    found = [f"{path.relative_to(core.parent)}:{number}: {line.strip()}" for path in sorted(core.rglob("*.py"))
             for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == [], "\n".join(found)
