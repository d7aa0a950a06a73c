"""The documentation's own links: every relative link in README.md, CONTRIBUTING.md,
CHANGELOG.md and docs/*.md must reach an existing file, and a `#anchor` into a Markdown file
must name one of its headings (GitHub's slug rules). Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest


def _repo_root() -> Path:
    """The folder holding pyproject.toml, wherever this file sits under it."""
    for folder in Path(__file__).resolve().parents:
        if (folder / "pyproject.toml").is_file():
            return folder
    raise RuntimeError("pyproject.toml not found above tests")


ROOT = _repo_root()


def doc_files(root: Path = ROOT) -> list[Path]:
    files = [root / name for name in ("README.md", "CONTRIBUTING.md", "CHANGELOG.md")]
    return [f for f in files if f.is_file()] + sorted((root / "docs").glob("*.md"))


# --- reading Markdown ------------------------------------------------------------------------

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
# A code span: a run of backticks, then anything up to the same run (not across a blank line).
_CODE_SPAN = re.compile(r"(`+)(?:(?!\n\s*\n).)+?\1", re.DOTALL)
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>\n]*>|[^)\s]+)(?:\s+[^)]*)?\)")
_REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>\n]*>|\S+)", re.MULTILINE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def prose(text: str) -> str:
    """The text with fenced code blocks blanked and code spans turned to spaces (line numbers
    kept): what looks like a link inside code is not one."""
    return _CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), without_fences(text))


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text as shown, lowercased, punctuation dropped
    (letters, digits, `_`, `-` and spaces stay), each space a `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links show their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading anchor of a Markdown text; repeated headings get -1, -2 … as on GitHub."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in without_fences(text).splitlines():
        match = _ATX.match(line)
        if not match:
            continue
        slug = github_slug(match.group(2) or "")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def without_fences(text: str) -> str:
    """Fenced code blocks blanked, line for line; code spans kept (headings show their code
    as text)."""
    lines: list[str] = []
    fence = ""
    for line in text.splitlines():
        match = _FENCE.match(line)
        if fence:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = ""
            lines.append("")
        elif match:
            fence = match.group(1)
            lines.append("")
        else:
            lines.append(line)
    return "\n".join(lines)


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.source.name}:{self.line}: ({self.target})"


def links(path: Path) -> Iterator[Link]:
    """Inline links and images, and reference definitions, outside code."""
    text = prose(path.read_text(encoding="utf-8"))
    for pattern in (_INLINE_LINK, _REFERENCE_DEF):
        for match in pattern.finditer(text):
            target = match.group(1)
            if target.startswith("<") and target.endswith(">"):
                target = target[1:-1]
            yield Link(path, text.count("\n", 0, match.start()) + 1, target.strip())


def broken_links(files: list[Path]) -> list[str]:
    """A line per relative link that leads nowhere: a missing file, or a missing heading."""
    problems: list[str] = []
    anchor_cache: dict[Path, set[str]] = {}
    for path in files:
        for link in links(path):
            if not link.target or _SCHEME.match(link.target) or link.target.startswith("//"):
                continue  # external (http:, mailto:, …): not checked here
            file_part, _, fragment = link.target.partition("#")
            file_part = unquote(file_part.split("?", 1)[0])
            target = (path.parent / file_part).resolve() if file_part else path.resolve()
            if not target.exists():
                problems.append(f"{link}: no file {file_part}")
                continue
            if not fragment or target.suffix.lower() != ".md" or target.is_dir():
                continue
            if target not in anchor_cache:
                anchor_cache[target] = anchors(target.read_text(encoding="utf-8"))
            if unquote(fragment).lower() not in anchor_cache[target]:
                problems.append(f"{link}: no heading #{fragment} in {target.name}")
    return problems


# --- the documentation -----------------------------------------------------------------------


def test_the_documentation_is_there() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in doc_files()}
    assert {"README.md", "CONTRIBUTING.md", "CHANGELOG.md", "docs/README.md"} <= names


def test_every_relative_link_resolves() -> None:
    problems = broken_links(doc_files())
    assert not problems, "Broken links:\n" + "\n".join(problems)


def test_the_readme_command_table_is_the_registry() -> None:
    """The README's table is the command table's own rendering: a subcommand added, renamed or
    reworded in `app/slack/listeners/commands.py` fails here until the README follows."""
    from app.slack.listeners.commands import TABLE

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = "<!-- commands:start -->", "<!-- commands:end -->"
    assert text.count(start) == 1 and text.count(end) == 1
    table = text.split(start, 1)[1].split(end, 1)[0].strip()
    assert table == TABLE.markdown(), (
        "README.md's command table differs from the registry; paste this between the markers:\n"
        + TABLE.markdown()
    )


def _commands_page_rows() -> list[tuple[str, list[str]]]:
    """docs/commands.md's `/incident` table: each row's command (without `/incident`) and the
    code spans of its Aliases column."""
    text = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    section = text.split("## `/incident`", 1)[1].split("\n#", 1)[0]
    rows: list[tuple[str, list[str]]] = []
    for line in section.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) != 3 or cells[0] in {"Command", "---"}:
            continue
        command = re.findall(r"`([^`]*)`", cells[0])[0].replace("\\|", "|")
        rows.append((command.removeprefix("/incident").strip(), re.findall(r"`([^`]*)`", cells[1])))
    return rows


def test_the_commands_page_covers_the_registry_with_its_aliases() -> None:
    """Every subcommand of the registry has a row in docs/commands.md, every row is a
    subcommand, and the Aliases column names exactly what the registry accepts."""
    from app.slack.listeners.commands import TABLE, parse

    def fixed_words(usage: str) -> list[str]:
        return re.split(r"\s*[\[<]", usage, maxsplit=1)[0].split()

    rows = _commands_page_rows()
    assert rows
    documented: dict[str, set[str]] = {}
    for command, aliases in rows:
        words = command.split() or ["declare"]
        matching = [e for e in TABLE if words[: len(fixed_words(e.usage))] == fixed_words(e.usage)]
        assert matching, f"docs/commands.md documents `{command}`, which is no subcommand"
        name = max(matching, key=lambda e: len(fixed_words(e.usage))).name
        documented.setdefault(name, set()).update(aliases)
        for alias in aliases:
            # A registry alias, or other words the entry's parser reads (`retro held`).
            known = alias in TABLE[name].aliases or (" " in alias and parse(alias).name == name)
            assert known, f"`{alias}` is no alias of `{command}`"
    assert set(documented) == {entry.name for entry in TABLE}
    for entry in TABLE:
        missing = set(entry.aliases) - documented[entry.name]
        assert not missing, f"docs/commands.md does not list the aliases {missing} of {entry.name}"


def _manifest_bot_scopes() -> list[str]:
    """`oauth_config.scopes.bot` of manifest.yml, read line by line (no YAML parser needed)."""
    scopes: list[str] = []
    path: list[tuple[int, str]] = []
    for raw in (ROOT / "manifest.yml").read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        item = line.strip()
        if item.startswith("- "):
            if [k for _, k in path] == ["oauth_config", "scopes", "bot"]:
                scopes.append(item[2:].strip())
            continue
        path = [(i, k) for i, k in path if i < indent]
        path.append((indent, item.split(":", 1)[0]))
    return scopes


def test_the_setup_page_lists_exactly_the_manifest_scopes() -> None:
    scopes = _manifest_bot_scopes()
    assert "commands" in scopes and "files:write" in scopes
    text = (ROOT / "docs" / "setup.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `([a-z:.]+)` \|", text, re.MULTILINE)
    assert listed == scopes


# --- the checker itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("The `warroom` CLI", "the-warroom-cli"),
        ("`/incident`", "incident"),
        ("Forms, buttons, shortcut, App Home", "forms-buttons-shortcut-app-home"),
        (
            "Socket Mode (the manifest's default; no public URL)",
            "socket-mode-the-manifests-default-no-public-url",
        ),
        ("Policy file: `warroom.toml`", "policy-file-warroomtoml"),
        ("Ack & escalate", "ack--escalate"),
        ("[0.1.0] - 2026-11-26", "010---2026-11-26"),
        ("Where a new feature goes", "where-a-new-feature-goes"),
    ],
)
def test_github_slugs(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_repeated_headings_are_numbered_and_code_is_not_a_heading() -> None:
    text = "# Notes\n\n## Notes\n\n```sh\n# not a heading\n```\n\n## Other ##\n"
    assert anchors(text) == {"notes", "notes-1", "other"}


def test_a_broken_link_is_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("# Page\n\n## Real heading\n", encoding="utf-8")
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Title\n\n"
        "[fine](docs/page.md) and [fine too](docs/page.md#real-heading) "
        "and [here](#title) and [web](https://example.com/missing).\n"
        "[gone](docs/missing.md) and [no such heading](docs/page.md#imaginary).\n"
        "[bad anchor here](#nowhere)\n"
        "`[in code](docs/missing.md)` is not a link.\n\n"
        "```md\n[in a fence](docs/missing.md)\n```\n\n"
        "[ref]: docs/also-missing.md\n",
        encoding="utf-8",
    )
    problems = broken_links([readme])
    assert len(problems) == 4, problems
    assert "README.md:4: (docs/missing.md): no file docs/missing.md" in problems
    assert any("#imaginary" in p for p in problems)
    assert any("#nowhere" in p for p in problems)
    assert any("docs/also-missing.md" in p for p in problems)


def test_links_are_found_across_lines_and_with_titles(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        'A [link that\nwraps](missing-one.md "title") and ![img](<missing two.png>).\n',
        encoding="utf-8",
    )
    assert [link.target for link in links(page)] == ["missing-one.md", "missing two.png"]
    assert len(broken_links([page])) == 2


# --- the tests docs/reliability.md names -----------------------------------------------------

_TEST_REFERENCE = re.compile(r"\b(test_[a-z0-9_]+)(\.py)?\b")
_TEST_DEFINITION = re.compile(r"^\s*(?:async\s+)?def\s+(test_[a-z0-9_]+)\s*\(", re.MULTILINE)


def missing_tests(doc: Path, tests: Path) -> list[str]:
    """The test files and test functions `doc` names that `tests` does not hold."""
    files = {path.name for path in tests.rglob("test_*.py")}
    defined = {
        name
        for path in tests.rglob("*.py")
        for name in _TEST_DEFINITION.findall(path.read_text(encoding="utf-8"))
    }
    missing = []
    for match in _TEST_REFERENCE.finditer(doc.read_text(encoding="utf-8")):
        name, is_file = match.group(1), bool(match.group(2))
        if (name + ".py" not in files) if is_file else (name not in defined):
            missing.append(match.group(0))
    return sorted(set(missing))


def test_every_test_the_reliability_guarantees_name_exists() -> None:
    """docs/reliability.md proves each guarantee by naming a test: a renamed or removed test
    must not leave a guarantee pointing at nothing."""
    assert missing_tests(ROOT / "docs" / "reliability.md", ROOT / "tests") == []
    assert missing_tests(ROOT / "README.md", ROOT / "tests") == []


def test_a_test_name_no_test_has_is_reported(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_real.py").write_text(
        "async def test_it_works(bot):\n    pass\n", encoding="utf-8"
    )
    doc = tmp_path / "doc.md"
    doc.write_text(
        "Proved by `test_it_works` in `test_real.py`; not by `test_imagined` in `test_gone.py`.\n",
        encoding="utf-8",
    )
    assert missing_tests(doc, tmp_path / "tests") == ["test_gone.py", "test_imagined"]
