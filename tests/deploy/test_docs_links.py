"""Every relative link in README.md and docs/*.md leads somewhere: to a file or directory of the
repository, and, for an #anchor into a markdown file, to one of its headings (GitHub's slugs)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

# [text](target) and ![alt](target), with an optional "title"; not inside code.
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code spans blanked."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(CODE_SPAN.sub("", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lowercased, punctuation other than - and _
    removed, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(page: Path) -> set[str]:
    """The anchors of PAGE's headings, outside fenced code; a repeated heading gets -1, -2, ...
    as on GitHub. Code spans in a heading count toward its slug, so the raw line is read."""
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in page.read_text().splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced and (match := HEADING.match(line)):
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[str]:
    return [m.group(1) for line in prose(page.read_text()) for m in LINK.finditer(line)]


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) and not target.startswith(
        "//"
    )


CASES = [
    pytest.param(page, target, id=f"{page.relative_to(ROOT)}->{target}")
    for page in PAGES
    for target in links(page)
    if relative(target)
]


def test_the_pages_have_links() -> None:
    assert (ROOT / "docs").is_dir()
    assert len(CASES) > 20


@pytest.mark.parametrize(("page", "target"), CASES)
def test_relative_link_resolves(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    file = (page.parent / unquote(path)).resolve() if path else page
    name = file.relative_to(ROOT).as_posix() if file.is_relative_to(ROOT) else str(file)
    assert file.is_relative_to(ROOT), f"{target} leaves the repository"
    assert file.exists(), f"{page.relative_to(ROOT)}: {target} does not exist"
    if anchor and file.suffix == ".md":
        assert anchor in headings(file), (
            f"{page.relative_to(ROOT)}: {target}: no heading with the anchor #{anchor} in {name}"
        )


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("How a pod ends", "how-a-pod-ends"),
        ("A write not kept, or not landed", "a-write-not-kept-or-not-landed"),
        ("`tandem explain`", "tandem-explain"),
        ("What `deploy/base` holds", "what-deploybase-holds"),
        ("Under `OnFailure`", "under-onfailure"),
        ("The locks, and how to update them", "the-locks-and-how-to-update-them"),
        ("Stops by exec at scale (2026-11-29)", "stops-by-exec-at-scale-2026-11-29"),
    ],
)
def test_slug_is_githubs(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor
