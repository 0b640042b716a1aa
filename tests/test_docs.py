"""The documentation cannot drift from the code: every `harness ...` command in a code block of
README.md or docs/*.md parses with the CLI's own parser, every relative link and image in them
exists, and no page narrates how the project was built."""
import re
import shlex
from pathlib import Path

import pytest

from harness import plugin_registry
from harness.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def code_blocks(text: str) -> list:
    """The lines of fenced (```) and indented (4 spaces, after a blank line) code blocks."""
    lines, inside, indented, previous_blank = [], False, False, True
    for line in text.splitlines():
        if line.strip().startswith("```"):
            inside = not inside
            continue
        if inside:
            lines.append(line)
            continue
        if line.startswith("    ") and (previous_blank or indented):
            indented = True
            lines.append(line.strip())
        elif line.strip():
            indented = False
        previous_blank = not line.strip()
    joined = []  # a line ending in a backslash goes on in the next one
    for line in lines:
        if joined and joined[-1].endswith("\\"):
            joined[-1] = joined[-1][:-1] + " " + line.strip()
        else:
            joined.append(line)
    return joined


def harness_commands(text: str) -> list:
    """The argument words of every harness command in the page's code blocks: ``harness ...``,
    ``python -m harness ...`` and ``torchrun ... -m harness ...``; trailing comments dropped, and
    ``...`` (the rest of a command, left out) removed."""
    commands = []
    for line in code_blocks(text):
        line = line.split(" # ", 1)[0].strip()
        match = re.search(r"(?:^|\s)(?:-m\s+)?harness\s+(.*)$", line)
        if not match or line.startswith(("#", "from ", "import ", "pip ")) or "=" in line.split()[0]:
            continue
        words = [word for word in shlex.split(match.group(1)) if word != "..."]
        if words and not words[0].startswith("-") and words[0].isidentifier():
            commands.append(words)
    return commands


def all_commands():
    for page in PAGES:
        for words in harness_commands(page.read_text()):
            yield pytest.param(words, id=f"{page.name}: harness {' '.join(words)}"[:120])


def test_the_pages_have_commands_to_check():
    found = {page.name: len(harness_commands(page.read_text())) for page in PAGES}
    assert found["README.md"] >= 3 and sum(found.values()) >= 20, found
    assert {"plugins.md", "recipes.md", "results.md", "data.md", "performance.md", "scaling.md",
            "reproducing.md"} <= set(found)


@pytest.mark.parametrize("words", list(all_commands()))
def test_documented_command_parses(words, capsys):
    parser = build_parser(plugin_registry.installed())
    try:
        parser.parse_args(words)
    except SystemExit as exc:
        pytest.fail(f"'harness {' '.join(words)}' does not parse: {capsys.readouterr().err.strip()}")
        raise AssertionError from exc


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_and_images_exist(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        assert path.exists(), f"{page.name} links to '{target}', which does not exist"


def test_readme_is_short_and_names_the_ci_test_command():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"^(python -m pytest[^|\n]*?) \|\|", ci, re.M).group(1).strip()
    assert f"\n    {command}\n" in readme, command


def test_the_quickstart_is_two_lines_a_run_then_the_suite():
    """One line installs into a fresh environment and runs the main job, one installs the test
    tools and runs exactly CI's test command."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    first = re.search(r"((?:^    \S.*\n)+)", section, re.M).group(1)  # the section's first code block
    lines = code_blocks("\n" + first)
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"^(python -m pytest[^|\n]*?) \|\|", ci, re.M).group(1).strip()
    assert len(lines) == 2, lines
    assert lines[0].startswith("python3 -m venv ") and lines[0].endswith("&& harness run --all --profile smoke")
    assert "pip install -e ." in lines[0] and lines[1].endswith(f"&& {command}")
    installed = re.findall(r"pip install -q -e (\S+)", ci)  # what CI installs, the README's second line too
    assert all(f"-e {package}" in lines[1] or f"-e '{package.strip(chr(34))}'" in lines[1] for package in installed), \
        (installed, lines[1])


# numbered rounds of work and the people who ran them belong to the project's history, not its pages
HISTORY = re.compile(r"\b(session|round)s? \d|\bthis session\b|\bmaintainers'|\bsince the last (round|session)\b",
                     re.I)


def test_no_page_or_source_narrates_its_own_development():
    tracked = [*PAGES, *ROOT.glob("results/reference/*/*.md"), *ROOT.glob("harness/**/*.py"),
               *ROOT.glob("plugins/**/*.py"), *ROOT.glob("benchmarks/*.py")]
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}"
             for path in tracked for number, line in enumerate(path.read_text().splitlines(), 1)
             if HISTORY.search(line)]
    assert not found, "\n".join(found)


def _strings(path: Path):
    """The string constants of a module that are not docstrings, f-strings' text parts included."""
    import ast

    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    parts = set()  # the text pieces of f-strings, read whole below with {...} for each value
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts.update(id(value) for value in node.values)
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{...}" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings | parts:
            yield node.lineno, node.value


# what help and messages may point at besides pages and commands: files every run writes
WRITTEN_FILES = ("leaderboard.csv", "leaderboard.md", "report.md", "error.log")
SEE = re.compile(r"\bsee (.+?)(?=[);]|$)", re.I)


def _resolves(target: str, parser) -> bool:
    target = target.strip().rstrip(".")
    page = re.fullmatch(r"(README\.md|README|docs/[\w-]+\.md)(?:, '([^']+)')?", target)
    if page:
        path = ROOT / (page.group(1) if page.group(1) != "README" else "README.md")
        headings = {line.lstrip("#").strip() for line in path.read_text().splitlines() if line.startswith("#")} \
            if path.is_file() else set()
        return path.is_file() and (page.group(2) is None or page.group(2) in headings)
    command = re.fullmatch(r"'?harness ([^']+?)'?", target)
    if command:
        words = shlex.split(command.group(1).replace("{...}", "timm"))
        if words[-1] == "--help":  # the command exists; its other arguments are not given
            return words[0] in parser._subparsers._group_actions[0].choices
        try:
            parser.parse_args(words)
            return True
        except SystemExit:
            return False
    return target.startswith(WRITTEN_FILES) or target.startswith("``")


def test_every_see_in_help_and_messages_resolves(capsys):
    """A 'see ...' in a help text or a message names a page (and heading) that exists, a command
    that parses or a file a run writes."""
    parser = build_parser(plugin_registry.installed())
    sources = [*ROOT.glob("harness/**/*.py"), *ROOT.glob("plugins/**/*.py")]
    seen, broken = 0, []
    for path in sources:
        for line, text in _strings(path):
            for target in SEE.findall(text):
                seen += 1
                if not _resolves(target, parser):
                    broken.append(f"{path.relative_to(ROOT)}:{line}: see {target}")
    capsys.readouterr()
    assert seen >= 5 and not broken, "\n".join(broken)


def fenced_blocks(text: str) -> list:
    """The lines of each fenced (```) code block, in order."""
    blocks, current = [], None
    for line in text.splitlines():
        if line.strip().startswith("```"):
            if current is not None:
                blocks.append(current)
            current = None if current is not None else []
        elif current is not None:
            current.append(line)
    return blocks


@pytest.mark.slow
def test_the_plugin_package_of_plugins_md_installs_and_runs_as_written(tmp_path):
    """The package of docs/plugins.md, copied from the page into a folder, installs, lists, runs
    with its model, evaluator column and callback, and passes its own tests."""
    import os
    import subprocess
    import sys

    page = (ROOT / "docs" / "plugins.md").read_text()
    section = page.split("## A complete plugin package", 1)[1].split("\n## ", 1)[0]
    blocks = fenced_blocks(section)
    files = {block[0][2:].strip(): "\n".join(block[1:]) + "\n" for block in blocks
             if block and block[0].startswith("# harness-tiny/")}
    assert set(files) == {"harness-tiny/pyproject.toml", "harness-tiny/harness_tiny/__init__.py",
                          "harness-tiny/tests/test_tiny.py"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (steps,) = [block for block in blocks if block and block[0].startswith("pip install")]
    site = tmp_path / "site"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    said = {}
    for step in steps:
        words = shlex.split(step)
        if words[:3] == ["pip", "install", "-e"]:
            # into a folder of its own rather than the suite's environment, built offline: the
            # installed distribution and its entry point are the same as an editable install's
            command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                       "--quiet", "--target", str(site), words[3]]
        elif words[0] == "harness":
            command = [sys.executable, "-m", "harness", *words[1:]]
        else:
            assert words[:3] == ["python", "-m", "pytest"], step
            command = [sys.executable, *words[1:], "-p", "no:cacheprovider"]
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, (step, result.stdout[-3000:], result.stderr[-3000:])
        said[words[1] if words[0] == "harness" else words[0]] = result.stdout + result.stderr
    listing = said["list"]
    assert all(any(name in line and " tiny " in f" {line} " for line in listing.splitlines())
               for name in ("tiny_cnn", "top2", "stop_at_90")), listing
    board = (tmp_path / "tiny-results" / "leaderboard.md").read_text()
    assert "| top-2 " in board and "| tiny_cnn " in board and "| baseline_cnn " in board
    assert "top-2 is the share of test images" in board  # the column's legend line, from its declaration
    assert "2 passed" in said["python"]


# a commit hash on its own (not a file name's part such as resnet18-f37072fd.pth, nor a sha256 prefix)
COMMIT = re.compile(r"(?<![\w./:-])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}(?![\w.-])")
OWN_DATA = re.compile(r"(\.\./)?shared/(datasets|weights)\b")
FIGURES_PAGES = ("performance.md",)  # with the reference folders: where measured figures live


def test_guides_carry_no_commit_measurement_or_path_of_our_own_data():
    """README and docs are guides: figures with their machine and commit live in performance.md and
    the reference folders; no page names a data or weights path that only this project's machines have."""
    found = []
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if page.name not in FIGURES_PAGES and (COMMIT.search(line) or re.search(r"\bmeasured\b", line, re.I)):
                found.append(f"{page.name}:{number}: {line.strip()[:90]}")
            if OWN_DATA.search(line):
                found.append(f"{page.name}:{number}: {line.strip()[:90]}")
    for commands in ROOT.glob("results/reference/*/COMMANDS.md"):
        found += [f"{commands.relative_to(ROOT)}:{n}: {line.strip()[:90]}"
                  for n, line in enumerate(commands.read_text().splitlines(), 1) if OWN_DATA.search(line)]
    assert not found, "\n".join(found)
    assert COMMIT.search("at commit `a2b55bb`") and not COMMIT.search("resnet18-f37072fd.pth sha256:1234abcd")
