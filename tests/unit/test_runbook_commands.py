"""Every command docs/runbook.md names still exists, so the runbook cannot rot.

Commands are taken from the runbook's code blocks and inline code spans: each
``driftline ...`` is resolved through the real CLI (an unknown command or option fails)
and run with ``--help`` (running it for real could change state); each ``make TARGET`` is
dry-run with ``make -n``; each ``kcat`` line must be plausible kcat (a broker, a mode,
a declared topic) and kcat must be introduced as optional.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from driftline.cli import app
from schemas.topics import all_topics

REPO = Path(__file__).resolve().parents[2]
RUNBOOK = REPO / "docs" / "runbook.md"
TOOLS = ("driftline", "make", "kcat")
#: Where one command of a shell line ends.
_SEPARATORS = {"|", "||", "&&", ";", "#", ">", ">>", "2>&1"}


def _code(text: str) -> list[str]:
    """Lines of fenced code blocks, then every inline code span outside them."""
    lines: list[str] = []
    prose: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        (lines if fenced else prose).append(line)
    # A code span may run over a line break (Markdown joins it with a space).
    spans = [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", "\n".join(prose))]
    return lines + spans


def _commands(text: str) -> list[list[str]]:
    """Each ``driftline``/``make``/``kcat`` invocation, as tokens up to its end."""
    found: list[list[str]] = []
    for line in _code(text):
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:  # an unbalanced quote in prose: look at the plain words
            tokens = line.split()
        start = 0
        while start < len(tokens):
            if tokens[start] in TOOLS and (start == 0 or tokens[start - 1] in _SEPARATORS):
                end = start + 1
                while end < len(tokens) and tokens[end] not in _SEPARATORS:
                    end += 1
                found.append(tokens[start:end])
                start = end
            else:
                start += 1
    return found


RUNBOOK_TEXT = RUNBOOK.read_text()
COMMANDS = _commands(RUNBOOK_TEXT)


def _resolve(words: list[str]) -> tuple[list[str], Any]:
    """The command path named by ``words`` (after ``driftline``) and its command object.

    Typer's commands are click-like (its own copy of click), so they are read by duck
    typing: a group has ``get_command``, an option has ``param_type_name == "option"``.
    """
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    ctx = command.context_class(command)
    for word in words:
        if word.startswith("-") or not hasattr(command, "get_command"):
            break
        sub = command.get_command(ctx, word)
        if sub is None:
            if getattr(command, "invoke_without_command", False) or command.params:
                break  # an argument of a group that runs itself (`retrain --model`)
            raise AssertionError(f"`driftline {' '.join([*path, word])}`: no such command")
        command, path = sub, [*path, word]
    return path, command


def _options(command: Any) -> set[str]:
    names = {"--help"}
    for param in command.params:
        if param.param_type_name == "option":
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def test_the_checks_catch_rot() -> None:
    """The resolver refuses unknown commands; the option check sees unknown options."""
    with pytest.raises(AssertionError, match="no such command"):
        _resolve(["frobnicate"])
    with pytest.raises(AssertionError, match="no such command"):
        _resolve(["topics", "frobnicate"])
    path, command = _resolve(["retrain", "--model", "m", "--urgent"])
    assert path == ["retrain"] and "--urgent" in _options(command)
    path, command = _resolve(["topic", "tail", "alerts", "--timeout", "2"])
    assert path == ["topic", "tail"] and "--no-such-flag" not in _options(command)
    markdown = "run `make\nup` then\n```bash\nx | driftline health --json # `make y`\n```"
    assert _commands(markdown) == [["driftline", "health", "--json"], ["make", "up"]]


def test_the_runbook_names_commands() -> None:
    tools = {tokens[0] for tokens in COMMANDS}
    assert {"driftline", "make"} <= tools, tools
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize(
    "tokens",
    [t for t in COMMANDS if t[0] == "driftline"],
    ids=lambda t: " ".join(t)[:60],
)
def test_driftline_command_exists_with_its_options(tokens: list[str]) -> None:
    path, command = _resolve(tokens[1:])
    known = _options(command)
    given = [w.split("=", 1)[0] for w in tokens[1 + len(path) :] if w.startswith("-")]
    unknown = [w for w in given if w not in known and not re.fullmatch(r"-\d+", w)]
    assert not unknown, f"`{' '.join(tokens)}`: {unknown} not options of it; known {known}"
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "tokens", [t for t in COMMANDS if t[0] == "make"], ids=lambda t: " ".join(t)[:60]
)
def test_make_target_exists(tokens: list[str]) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    targets = [w for w in tokens[1:] if not w.startswith("-") and "=" not in w]
    for target in targets or [""]:  # a bare `make` is the default goal
        dry = subprocess.run(
            ["make", "-n", "--no-print-directory", *([target] if target else [])],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert dry.returncode == 0, f"make -n {target}: {dry.stderr}"


KCAT = [t for t in COMMANDS if t[0] == "kcat"]


def test_kcat_is_introduced_as_optional() -> None:
    if KCAT:
        assert re.search(r"kcat[^.\n]*optional|optional[^.\n]*kcat", RUNBOOK_TEXT, re.I)


@pytest.mark.parametrize("tokens", KCAT, ids=lambda t: " ".join(t)[:60])
def test_kcat_command_is_plausible(tokens: list[str]) -> None:
    words = tokens[1:]
    assert "-b" in words, f"`{' '.join(tokens)}`: no broker (-b)"
    modes = {"-C", "-P", "-L", "-Q"} & set(words)
    assert len(modes) == 1, f"`{' '.join(tokens)}`: exactly one mode of -C -P -L -Q"
    if modes & {"-C", "-P"}:
        assert "-t" in words, f"`{' '.join(tokens)}`: consume/produce needs -t TOPIC"
        topic = words[words.index("-t") + 1]
        assert topic in {spec.name for spec in all_topics()}, f"unknown topic {topic!r}"
    known = set("bCPLQtpoecfKGXsDJ") | {"-q", "-u", "-E", "-O", "-T", "-Z"}
    flags = [w for w in words if re.fullmatch(r"-[A-Za-z]", w)]
    assert all(f[1] in known or f in known for f in flags), flags
