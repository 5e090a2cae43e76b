"""The README and docs/ stay inside the repository and match it: every `retf` command of their
code blocks is one the `retf` parser accepts, every repository path they name exists, every
quoted section they point to is a heading of that document, and nothing in the sources cites
notes that live outside the repository."""
from __future__ import annotations

import contextlib
import io
import re
import shlex

import pytest

from conftest import REPO_ROOT
from retf_ros.cli import build_parser

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
# Where prose that cites documents lives: the docs, code comments and docstrings, configs.
SOURCES = [*DOCS, *sorted((REPO_ROOT / "retf_ros").rglob("*.py")), *sorted((REPO_ROOT / "test").glob("*.py")),
           *sorted((REPO_ROOT / "config").glob("*.yaml")), *sorted((REPO_ROOT / "launch").glob("*")),
           REPO_ROOT / "package.xml", REPO_ROOT / "setup.py", REPO_ROOT / "Makefile"]
FENCED_BLOCK = re.compile(r"^```\w*\n(.*?)^```", re.M | re.S)
REPO_PATH = re.compile(r"(?<![\w./-])((?:docs|config|results|test|launch|retf_ros|\.ci)/[\w./*<>-]*[\w*>])")
SCHEMA_NAME = re.compile(r"^retf_ros/\w+/v\d+$")  # e.g. retf_ros/anticipation/v1: a name, not a file
# `docs/node.md, section "pose_node"`, `docs/training.md ("Ablations")`, `README's "Installing"`
SECTION_REFERENCE = re.compile(r"(docs/[\w-]+\.md|README)(?:'s)?\s*[,(]?\s*(?:sections?\s+)?\(?\"([^\"()=]{1,100})\"")


def _retf_commands(text: str) -> list[str]:
    """Complete `retf ...` command lines of the fenced code blocks; usage synopses ("[--opt X]") are
    not commands and are left out."""
    commands = []
    for block in FENCED_BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith("retf ") and " [" not in line:
                commands.append(line)
    return commands


def _headings(path) -> list[str]:
    return [re.sub(r"[`*]", "", line.lstrip("#").strip())
            for line in path.read_text().splitlines() if line.startswith("#")]


def test_every_retf_command_in_a_code_block_of_the_docs_parses():
    parser = build_parser()
    commands = [(doc.name, line) for doc in DOCS for line in _retf_commands(doc.read_text())]
    refused = []
    for doc, line in commands:
        try:
            with contextlib.redirect_stderr(io.StringIO()) as errors:
                parser.parse_args(shlex.split(line, comments=True)[1:])
        except SystemExit:
            refused.append(f"{doc}: {line}: {errors.getvalue().strip().splitlines()[-1]}")
    assert len(commands) > 20        # the README's training block and docs/training.md's at least
    assert refused == []


def test_a_wrong_option_in_a_documented_command_is_refused():
    [command] = _retf_commands("```bash\nretf train --data D --out R --no-such-option\n```\n")
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        build_parser().parse_args(shlex.split(command)[1:])


def test_every_repository_path_the_docs_name_exists():
    missing = []
    for doc in DOCS:
        for path in sorted(set(REPO_PATH.findall(doc.read_text()))):
            if "<" in path or SCHEMA_NAME.match(path):
                continue
            candidates = [REPO_ROOT / path] if "*" not in path else list(REPO_ROOT.glob(path))
            # a checkpoint is also named without its suffix (NAME for NAME.safetensors + NAME.json)
            candidates += list(REPO_ROOT.glob(path + ".*")) if "*" not in path else []
            if not any(candidate.exists() for candidate in candidates):
                missing.append(f"{doc.name}: {path}")
    assert missing == []


def test_every_quoted_section_reference_names_a_heading_of_that_document():
    found, dangling = 0, []
    for source in SOURCES:
        text = re.sub(r"\s*\n\s*(?:#\s*)?", " ", source.read_text())  # references wrap across lines
        for document, section in SECTION_REFERENCE.findall(text):
            target = REPO_ROOT / ("README.md" if document == "README" else document)
            wanted = re.sub(r"[`*]", "", section)
            found += 1
            if not target.exists() or not any(h.startswith(wanted) for h in _headings(target)):
                dangling.append(f"{source.relative_to(REPO_ROOT)}: {document} \"{section}\"")
    assert found >= 15
    assert dangling == []


def test_no_source_cites_notes_outside_the_repository():
    # The method and design notes the code relies on are docs/method.md and docs/architecture.md;
    # a bare "method.md" or any "design.md" would send a reader to files the repository lacks.
    # (../shared/data is the tests' real data, located by conftest, not a document.)
    outside = re.compile(r"(?<!docs/)\b(?:method|design)\.md|shared[/]docs|/work/")
    allowed = {REPO_ROOT / "test" / "conftest.py",  # its fallback to /work/shared/data on a dev machine
               REPO_ROOT / "test" / "test_docs_references.py"}  # names what it looks for
    citing = [f"{source.relative_to(REPO_ROOT)}: {match.group(0)}"
              for source in SOURCES if source not in allowed
              for match in outside.finditer(source.read_text())]
    assert citing == []
    assert (REPO_ROOT / "docs" / "method.md").is_file()
