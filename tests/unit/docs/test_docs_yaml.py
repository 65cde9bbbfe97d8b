"""Every YAML example of the README and docs/*.md parses, and so does each variant a page tells the reader to make
by uncommenting lines (docs/awx.md's entry "straight from the source repository")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def yaml_blocks(page: Path) -> list:
    return re.findall(r"^```yaml\n(.*?)^```", page.read_text(), flags=re.M | re.S)


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_yaml_example_parses(page):
    for block in yaml_blocks(page):
        yaml.safe_load(block)


def test_the_awx_requirements_from_the_source_repository_parse_when_uncommented():
    block = next(b for b in yaml_blocks(ROOT / "docs" / "awx.md") if "collections:" in b and "type: git" in b)
    lines = block.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("  - name: restate.admin"))
    # the page says: the entry above replaced by the commented one
    kept = [line for line in lines[:start] if not line.startswith("#")]
    commented = [line[1:] for line in lines[start:] if line.startswith("#  ")]
    requirements = yaml.safe_load("\n".join(kept + commented))
    assert requirements == {"collections": [
        {"name": "https://example.com/your-fork/restate-admin.git", "type": "git", "version": "main"}]}
