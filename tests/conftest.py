"""Make the source tree importable as ansible_collections.restate.admin for pytest runs outside ansible-test."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _collection_root() -> Path:
    """ROOT itself when it already sits in ansible_collections/restate/admin (ansible-test), else a link."""
    if ROOT.parts[-3:] == ("ansible_collections", "restate", "admin"):
        return ROOT.parents[2]
    base = ROOT / ".cache" / "collections"
    link = base / "ansible_collections" / "restate" / "admin"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(ROOT, target_is_directory=True)
    return base


if not any(name == "ansible_collections" or name.startswith("ansible_collections.") for name in sys.modules):
    sys.path.insert(0, str(_collection_root()))
