"""The documentation holds together: every link from one markdown file of the repository to another
(and to a heading in it) resolves, the README stays a ten-minute read, and LICENSE is there.

Also runs as a script: ``python tests/test_docs.py`` prints what is broken and exits 1.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
README_LIMIT = 12_000  # characters (wc -c): issue 19, "a README that a newcomer reads in ten minutes"

LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")
INLINE_CODE = re.compile(r"`[^`\n]*`")


def markdown_files() -> list[Path]:
    """The repository's own markdown: the top level, docs/ and benchmarks/ (not the virtualenvs)."""
    files = sorted(ROOT.glob("*.md")) + sorted((ROOT / "docs").glob("**/*.md"))
    return files + sorted((ROOT / "benchmarks").glob("*.md"))


def prose_lines(text: str, keep_code: bool = False) -> list[str]:
    """The lines outside fenced code blocks, with inline code removed unless ``keep_code``."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line if keep_code else INLINE_CODE.sub("", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation other than - and _ dropped, spaces to -."""
    text = INLINE_CODE.sub(lambda m: m.group(0)[1:-1], heading.strip()).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a markdown file's headings, numbered as GitHub numbers repeated ones."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(path.read_text(encoding="utf-8"), keep_code=True):
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            base = slug(heading.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links() -> list[str]:
    """Every local link (file or heading) that does not resolve, as ``file: target (reason)``."""
    problems = []
    for source in markdown_files():
        for line in prose_lines(source.read_text(encoding="utf-8")):
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                    continue
                file_part, _, anchor = target.partition("#")
                resolved = (source.parent / unquote(file_part)).resolve() if file_part else source
                where = f"{source.relative_to(ROOT)}: {target}"
                if not resolved.exists():
                    problems.append(f"{where} (no such file)")
                elif anchor and resolved.suffix == ".md" and unquote(anchor) not in anchors(resolved):
                    problems.append(f"{where} (no such heading)")
    return problems


def test_every_local_link_in_the_markdown_resolves():
    assert broken_links() == []


def test_the_readme_is_short_and_the_license_is_there():
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md has {size} characters, over {README_LIMIT}: move a section to docs/"
    assert "BSD 3-Clause" in (ROOT / "LICENSE").read_text(encoding="utf-8")


if __name__ == "__main__":
    broken = broken_links()
    print("\n".join(broken) or f"{len(markdown_files())} markdown files: every local link resolves")
    print(f"README.md: {len((ROOT / 'README.md').read_bytes())} characters (limit {README_LIMIT})")
    sys.exit(1 if broken else 0)


def test_the_design_page_names_every_module_of_the_package():
    """docs/design.md is where a newcomer learns the modules; a module it does not name is one
    nobody told them about."""
    text = (ROOT / "docs" / "design.md").read_text()
    modules = sorted(path.relative_to(ROOT / "mpibohb") for path in (ROOT / "mpibohb").rglob("*.py")
                     if path.name not in ("__init__.py", "__main__.py"))
    unnamed = [str(module) for module in modules if f"`{module.name}`" not in text]
    assert not unnamed, f"docs/design.md does not name: {', '.join(unnamed)}"
