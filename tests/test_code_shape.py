"""The code stays in small pieces: no function over 50 lines, no class over 150, no parameter list
over 6 (``self`` and ``cls`` aside), in the harness and its built-in plugins. A longer one is a sign
that an object should carry what is passed by hand, or that a unit does two jobs."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*ROOT.glob("harness/**/*.py"), *ROOT.glob("plugins/**/*.py")])
LIMITS = {"function lines": 50, "class lines": 150, "parameters": 6}


def measures(path: Path):
    """(what, where, how much) for every function and class of a module."""
    for node in ast.walk(ast.parse(path.read_text())):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)} {getattr(node, 'name', '')}"
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            names = [a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)]
            names += [a.arg for a in (arguments.vararg, arguments.kwarg) if a is not None]
            yield "function lines", where, node.end_lineno - node.lineno + 1
            yield "parameters", where, len([n for n in names if n not in ("self", "cls")])
        elif isinstance(node, ast.ClassDef):
            yield "class lines", where, node.end_lineno - node.lineno + 1


@pytest.mark.parametrize("kind", LIMITS)
def test_no_unit_over_its_limit(kind):
    assert SOURCES
    over = [f"{where}: {size}" for path in SOURCES for what, where, size in measures(path)
            if what == kind and size > LIMITS[kind]]
    assert not over, f"over {LIMITS[kind]} {kind}:\n" + "\n".join(over)
