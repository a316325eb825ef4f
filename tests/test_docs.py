"""The repository's own docs: every citation of ``docs/*.md`` resolves to a heading, every code
reference in them imports, nothing cites a file outside the repo, and CONTRIBUTING's layout map
names exactly the packages' modules."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = {p.name: p for p in sorted((ROOT / "docs").glob("*.md"))}
#: Where the repo cites its docs: package and test sources, figures, benchmarks, notebooks, the README.
CITING = [
    *sorted((ROOT / "probes").rglob("*.py")),
    *sorted((ROOT / "steering").rglob("*.py")),
    *sorted((ROOT / "tests").rglob("*.py")),
    *sorted((ROOT / "figures").glob("*.py")),
    *sorted((ROOT / "benchmarks").glob("*.py")),
    *sorted((ROOT / "notebooks").glob("*.py")),
    ROOT / "README.md",
    ROOT / "CONTRIBUTING.md",
    *DOCS.values(),
]
# e.g. `docs/measures.md, "Weight geometry"` or `docs/measures.md ("Statistics")`; several titles join with "and"
CITATION = re.compile(r'docs/(\w+\.md)[,:]?\s*\(?((?:"[^"]{1,80}"(?:\s*(?:,|and)\s*)?)+)')
LINK = re.compile(r"\]\(((?:\.\./|docs/)?(\w+\.md))#([\w-]+)\)")


def headings(path: Path) -> list[str]:
    out, fenced = [], False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            out.append(line.lstrip("#").strip())
    return out


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", ""))
    return text.replace(" ", "-")


def test_anchor_rule() -> None:
    assert anchor("Use, don't write") == "use-dont-write"
    assert anchor("pass@k and the crossover k") == "passk-and-the-crossover-k"


def test_every_cited_section_exists() -> None:
    bad = []
    for path in CITING:
        text = path.read_text()
        for m in CITATION.finditer(text):
            doc, titles = m.group(1), re.findall(r'"([^"]+)"', m.group(2))
            if doc not in DOCS:
                bad.append(f"{path.relative_to(ROOT)}: docs/{doc} does not exist")
                continue
            have = headings(DOCS[doc])
            for title in titles:
                title = " ".join(title.split())
                if title not in have:
                    bad.append(f"{path.relative_to(ROOT)}: docs/{doc} has no heading {title!r}")
        for m in re.finditer(r"docs/(\w+\.md)", text):
            if m.group(1) not in DOCS:
                bad.append(f"{path.relative_to(ROOT)}: docs/{m.group(1)} does not exist")
    assert not bad, "\n".join(sorted(set(bad)))


def test_every_markdown_anchor_exists() -> None:
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *DOCS.values()]
    bad = []
    for path in files:
        for m in LINK.finditer(path.read_text()):
            target = DOCS.get(m.group(2)) or (ROOT / m.group(2))
            if not target.exists() or m.group(3) not in {anchor(h) for h in headings(target)}:
                bad.append(f"{path.relative_to(ROOT)}: {m.group(1)}#{m.group(3)}")
    assert not bad, bad


def _resolve(dotted: str) -> object:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize("doc", sorted(DOCS), ids=str)
def test_code_references_in_docs_import(doc: str) -> None:
    """Every ``probes.x.y`` / ``steering.x.y`` in backticks names a module or an attribute of one."""
    refs = sorted(set(re.findall(r"`((?:probes|steering)(?:\.\w+)+)", DOCS[doc].read_text())))
    assert refs, "no code references found"
    bad = []
    for ref in refs:
        try:
            _resolve(ref)
        except (ImportError, AttributeError) as err:
            bad.append(f"{ref}: {type(err).__name__}: {err}")
    assert not bad, "\n".join(bad)


def test_nothing_cites_files_outside_the_repo() -> None:
    outside = re.compile(r"\.\./shared|\b(?:SCIENCE|DESIGN|STYLE)\.md\b")
    bad = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in CITING
        if p != Path(__file__)
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if outside.search(line)
    ]
    assert not bad, bad


def _layout() -> list[str]:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    block = text.split("<!-- layout -->", 1)[1].split("<!-- /layout -->", 1)[0]
    return [line.split()[0] for line in block.splitlines() if line.strip() and not line.startswith("```")]


def test_layout_map_matches_the_tree() -> None:
    """CONTRIBUTING's map names every module and sub-package of probes/ and steering/, and only
    paths that exist."""
    listed = _layout()
    missing_on_disk = [p for p in listed if not (ROOT / p).exists()]
    tree = [
        str(p.relative_to(ROOT)) + ("/" if p.is_dir() else "")
        for pkg in ("probes", "steering")
        for p in sorted((ROOT / pkg).rglob("*"))
        if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.name != "__init__.py")
    ]
    unlisted = [p for p in tree if p not in listed]
    assert not missing_on_disk and not unlisted, (
        f"listed but absent: {missing_on_disk}; present but unlisted: {unlisted}"
    )


def test_readme_map_names_every_subpackage_and_only_real_ones() -> None:
    """README's "Where things live" names each sub-package of probes/ and steering/ (as ``name/``)
    and each top-level module of steering/, and every ``name/`` or ``name.py`` it names exists."""
    text = (ROOT / "README.md").read_text().split("## Where things live", 1)[1].split("```", 2)[1]
    named = set(re.findall(r"(?<![\w-])([a-z_]+/|[a-z_]+\.py)", text))
    subpackages = {
        p.name + "/"
        for pkg in ("probes", "steering")
        for p in (ROOT / pkg).iterdir()
        if (p / "__init__.py").exists()
    }
    steering_modules = {p.name for p in (ROOT / "steering").glob("*.py") if p.name != "__init__.py"}
    assert subpackages | steering_modules <= named, sorted((subpackages | steering_modules) - named)
    real = subpackages | steering_modules | {p.name for pkg in ("probes",) for p in (ROOT / pkg).glob("*.py")}
    real |= {p.name + "/" for p in ROOT.iterdir() if p.is_dir()} | {"sweeps/", "families/", "gallery/"}
    assert named <= real, sorted(named - real)
