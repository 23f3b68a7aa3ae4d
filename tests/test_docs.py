"""The README and docs/ hold together: every relative link (and its #anchor) resolves, the README
links every file in docs/, and every image tag they show is one the release publishes.

The README is also the PyPI description, where a relative link leads nowhere, so it links to
docs/ by absolute GitHub URL; those URLs are mapped onto this checkout.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest
import yaml

from .runner import ROOT

REPOSITORY = "org/asc-token-action"  # the placeholder owner the docs use throughout
BLOB_PREFIXES = tuple(f"https://github.com/{REPOSITORY}/{kind}/main/" for kind in ("blob", "tree"))
IMAGE = f"ghcr.io/{REPOSITORY}"
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def documents() -> List[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def without_fences(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def without_code(text: str) -> str:
    """Markdown minus fenced blocks and code spans, where a `](...)` is not a link."""
    return re.sub(r"(`+).+?\1", "", without_fences(text))


def link_targets(text: str) -> List[str]:
    # Every `](target)`, which also catches the outer link of a badge `[![alt](image)](target)`.
    return re.findall(r"\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)", without_code(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text, lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"[`*]", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(doc: Path) -> Set[str]:
    seen: Counter[str] = Counter()
    found = set()
    for line in without_fences(doc.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            found.add(base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
    return found


def local_links() -> Iterator[Tuple[Path, str, Path, str]]:
    """(document, link as written, the file it names in this checkout, #anchor or "")."""
    for doc in documents():
        for target in link_targets(doc.read_text(encoding="utf-8")):
            path, _, anchor = target.partition("#")
            if path.startswith(BLOB_PREFIXES):
                resolved = ROOT / path.split("/main/", 1)[1]
            elif re.match(r"[a-z][a-z0-9+.-]*:", path):
                continue  # another site, or mailto: (no network in tests)
            else:
                resolved = (doc.parent / path) if path else doc
            yield doc, target, resolved.resolve(), anchor


def by_target() -> Dict[str, List[Tuple[Path, str, Path, str]]]:
    grouped: Dict[str, List[Tuple[Path, str, Path, str]]] = {}
    for link in local_links():
        grouped.setdefault(link[2].relative_to(ROOT.resolve()).as_posix(), []).append(link)
    return grouped


TARGETS = by_target()


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_link_resolves(target: str) -> None:
    links = TARGETS[target]
    path = links[0][2]
    assert path.exists(), f"{target} does not exist; linked as {[(d.name, written) for d, written, *_ in links]}"
    if path.suffix == ".md":
        known = anchors(path)
        missing = [(doc.name, written) for doc, written, _, anchor in links if anchor and anchor not in known]
        assert not missing, f"no such heading in {target}: {missing}; its anchors: {sorted(known)}"


def test_readme_links_are_absolute() -> None:
    """PyPI shows the README with nothing to resolve a relative link against, and gives Markdown
    headings no anchors (pypi/warehouse#4064), so even `#section` leads nowhere there."""
    relative = [
        target
        for target in link_targets(README.read_text(encoding="utf-8"))
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)
    ]
    assert relative == [], f"write these as https://github.com/{REPOSITORY}/blob/main/...: {relative}"


def test_readme_links_every_doc() -> None:
    linked = {path for doc, _, path, _ in local_links() if doc == README}
    in_docs = {path.resolve() for path in DOCS.rglob("*") if path.is_file()}
    unlinked = sorted(path.relative_to(ROOT.resolve()).as_posix() for path in in_docs - linked)
    assert unlinked == [], "link these from the README's Documentation list"


def test_readme_is_the_front_page() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300, "move detail to docs/ and link it"
    commands = re.search(r"```sh\n(.*?)```", text, flags=re.S)
    assert commands and [line.split("#")[0].strip() for line in commands.group(1).splitlines()] == [
        "python3 dev.py demo",
        "python3 dev.py test",
    ]


def test_slug_matches_github() -> None:
    assert slug("Other CI systems: `asc-token`") == "other-ci-systems-asc-token"
    assert slug("Woodpecker / Drone") == "woodpecker--drone"
    assert "other-ci-systems-asc-token" in anchors(DOCS / "other-ci.md")
    assert slug("Hand the key to Apple's tools") == "hand-the-key-to-apples-tools"
    assert slug("Long jobs: upload, then poll processing for an hour") == (
        "long-jobs-upload-then-poll-processing-for-an-hour"
    )


# --- image tags ----------------------------------------------------------------------------


def version() -> str:
    found = re.search(r'^__version__ = "([^"]+)"', (ROOT / "src" / "asc_token" / "__init__.py").read_text(), re.M)
    assert found
    return found.group(1)


def published_tag_patterns() -> List[re.Pattern[str]]:
    """The tags release.yml's publishing job pushes, as patterns (any version), from its metadata-action step."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text(encoding="utf-8"))
    steps = workflow["jobs"]["publish-image"]["steps"]
    (meta,) = [step for step in steps if str(step.get("uses", "")).startswith("docker/metadata-action@")]
    assert meta["with"]["images"] == "ghcr.io/${{ github.repository }}"
    placeholders = {"{{version}}": r"\d+\.\d+\.\d+", "{{major}}": r"\d+", "{{minor}}": r"\d+", "{{patch}}": r"\d+"}
    patterns = []
    for rule in str(meta["with"]["tags"]).split("\n"):
        if not rule.strip():
            continue
        attributes = dict(part.split("=", 1) for part in rule.strip().split(","))
        assert attributes.get("type") == "semver", f"teach this test the tag rule {rule!r}"
        pieces = re.split(r"(\{\{\w+\}\})", attributes["pattern"])
        patterns.append(re.compile("".join(placeholders.get(piece, re.escape(piece)) for piece in pieces)))
    # metadata-action's default flavor, latest=auto, adds `latest` to semver tags.
    if "latest=false" not in str(meta["with"].get("flavor", "")):
        patterns.append(re.compile("latest"))
    return patterns


def image_references() -> List[Tuple[str, str]]:
    files = [*documents(), ROOT / "Dockerfile"]
    return [
        (path.relative_to(ROOT).as_posix(), tag)
        for path in files
        for tag in re.findall(re.escape(IMAGE) + r":([\w.-]+)", path.read_text(encoding="utf-8"))
    ]


def test_every_image_tag_shown_is_published() -> None:
    patterns = published_tag_patterns()
    assert {pattern.pattern for pattern in patterns} >= {r"\d+\.\d+\.\d+", r"\d+\.\d+", r"\d+"}
    references = image_references()
    assert {where for where, _ in references} >= {"README.md", "docs/other-ci.md", "Dockerfile"}
    unpublished = [(where, tag) for where, tag in references if not any(p.fullmatch(tag) for p in patterns)]
    assert unpublished == [], "release.yml publishes 1.0.0, 1.0 and 1 (git tags like v1 are for uses:)"
    major = version().split(".")[0]
    other_major = [(where, tag) for where, tag in references if tag != "latest" and tag.split(".")[0] != major]
    assert other_major == [], f"the current release line is {major}"


def test_uses_refs_name_the_current_major() -> None:
    refs = {ref for doc in documents() for ref in re.findall(rf"{re.escape(REPOSITORY)}@(v[\w.]+)", doc.read_text())}
    assert refs == {f"v{version().split('.')[0]}"}


def test_the_supported_runners_table_is_what_check_wheels_proves() -> None:
    """docs/runtime.md names the runners `dev.py check-wheels` checks: each OS, arch and Python range."""
    from devtools.check_wheels import PLATFORMS

    text = (DOCS / "runtime.md").read_text(encoding="utf-8")
    section = text.split("\n## Supported runners\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:4] for line in section.splitlines() if line.startswith("| ")][1:]  # after the header
    documented = [tuple(cell.strip() for cell in row) for row in rows]
    assert documented == [(platform.os, platform.arch, platform.python_range()) for platform in PLATFORMS]


def _table_rows(document: Path) -> List[List[str]]:
    """Each markdown table row's cells, stripped (header and rule rows included)."""
    lines = [line for line in without_fences(document.read_text(encoding="utf-8")).splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in lines]


def _documented(document: Path) -> Dict[str, str]:
    """Every `name` in a table row's first cell -> that row's second cell."""
    return {
        name: row[1] if len(row) > 1 else ""
        for row in _table_rows(document)
        for name in re.findall(r"`([^`]+)`", row[0])
    }


@pytest.mark.parametrize(
    ("action_file", "document"), [("action.yml", "README.md"), ("upload/action.yml", "docs/uploads.md")]
)
def test_every_input_and_output_is_in_its_table(action_file: str, document: str) -> None:
    """Each input and output of the action is a row of the page that documents it (the README for
    the token step, docs/uploads.md for the upload step), and a default the action gives is the one shown."""
    action = yaml.safe_load((ROOT / action_file).read_text(encoding="utf-8"))
    rows = _documented(ROOT / document)
    missing = [name for name in [*action["inputs"], *action["outputs"]] if name not in rows]
    assert missing == [], f"{document} has no row for {missing}"
    for name, spec in action["inputs"].items():
        default = str(spec.get("default", ""))
        if spec.get("required"):
            assert rows[name] == "(required)", (name, rows[name])
        elif default:
            assert rows[name] == f"`{default}`", (name, default, rows[name])
