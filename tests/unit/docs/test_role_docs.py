"""scripts/role_readmes.py: a role's example play and report come from one source each and are checked."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("role_readmes", ROOT / "scripts" / "role_readmes.py")
role_readmes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(role_readmes)

MAIN = {"options": {"x_size": {"type": "int", "required": True}, "x_mode": {"type": "str"}}}
PLAY = "- hosts: localhost\n  roles:\n    - role: restate.admin.x\n      vars:\n        {vars}\n"


def test_the_example_must_set_only_known_variables_and_every_required_one():
    assert "x_size: 3" in role_readmes.example_play("x", dict(MAIN, examples=PLAY.format(vars="x_size: 3")))
    with pytest.raises(role_readmes.SpecError, match="sets x_sise, which meta/argument_specs.yml"):
        role_readmes.example_play("x", dict(MAIN, examples=PLAY.format(vars="x_sise: 3")))
    with pytest.raises(role_readmes.SpecError, match="leaves out the required x_size"):
        role_readmes.example_play("x", dict(MAIN, examples=PLAY.format(vars="x_mode: a")))
    with pytest.raises(role_readmes.SpecError, match="has no 'examples'"):
        role_readmes.example_play("x", MAIN)


def test_the_report_is_the_same_in_the_readme_and_on_the_site(tmp_path):
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "report.yml").write_text(yaml.safe_dump({
        "fact": "x_report", "description": "Set at the end of every run.",
        "keys": {"purged": {"type": "int", "description": "How many were purged (C(--check): would be)."}}}))
    report = role_readmes.load_report(tmp_path)
    assert role_readmes.report_lines(report, "x", role_readmes.md) == [
        "The role sets the fact `x_report`. Set at the end of every run.", "",
        "- `purged` (int): How many were purged (`--check`: would be).", ""]
    assert role_readmes.report_lines(report, "x", role_readmes.rst) == [
        "The role sets the fact ``x_report``. Set at the end of every run.", "",
        "- ``purged`` (int): How many were purged (``--check``: would be).", ""]
    (tmp_path / "meta" / "report.yml").write_text("fact: x_report\ndescription: d\nkeys: {purged: {type: int}}\n")
    with pytest.raises(role_readmes.SpecError, match="key purged needs a 'type' and a 'description'"):
        role_readmes.load_report(tmp_path)


def test_every_role_has_its_example_and_report():
    for role_dir in sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir()):
        text = role_readmes.render(role_dir)
        assert "## Example" in text and "## Report" in text and f"C({role_dir.name}_report)" not in text
