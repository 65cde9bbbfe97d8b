"""The files docs/cron.md shows, read from the guide itself, so the demo and the tests run what it says.

Each file is a fenced block whose first line is a comment naming its path (``# /etc/restate-admin/inventory.ini``).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GUIDE = ROOT / "docs" / "cron.md"
INVENTORY = "/etc/restate-admin/inventory.ini"
CONNECTION = "/etc/restate-admin/connection.yml"
CRONTAB = "/etc/cron.d/restate-admin"


def files(guide: Path = GUIDE) -> dict:
    """{path: content without its naming comment} of every fenced block that starts with ``# /path``."""
    found = {}
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", guide.read_text(), flags=re.M | re.S):
        first, unused_newline, rest = block.partition("\n")
        if first.startswith("# /"):
            found[first[2:].strip()] = rest
    return found


def inventory() -> str:
    return files()[INVENTORY]


def crontab_job() -> tuple:
    """(environment lines as a dict, schedule, user, command) of the crontab's first job line."""
    env, jobs = {}, []
    for line in files()[CRONTAB].splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name_value = re.match(r"^([A-Z_]+)=(.*)$", line)
        if name_value:
            env[name_value[1]] = name_value[2]
        else:
            jobs.append(line)
    fields = jobs[0].split(None, 6)
    return env, " ".join(fields[:5]), fields[5], fields[6]


def playbook_options() -> list:
    """The options the crontab line gives ansible-playbook before the playbook: -i INVENTORY -e @CONNECTION."""
    unused_env, unused_schedule, unused_user, command = crontab_job()
    words = shlex.split(command)
    start = next(n for n, word in enumerate(words) if word.endswith("/ansible-playbook")) + 1
    end = next(n for n, word in enumerate(words) if word.startswith("restate.admin."))
    return words[start:end]
