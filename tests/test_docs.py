"""The documentation cannot drift from the code: every `harness ...` command in a code block of
README.md or docs/*.md parses with the CLI's own parser, every relative link and image in them
exists, and no page narrates how the project was built."""
import re
import shlex
from pathlib import Path

import pytest

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
    parser = build_parser()
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
    assert len(readme.splitlines()) <= 200
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"^(python -m pytest[^|\n]*?) \|\|", ci, re.M).group(1).strip()
    assert f"\n    {command}\n" in readme, command


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
    parser = build_parser()
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
