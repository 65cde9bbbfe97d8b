"""Write roles/<role>/README.md from the role's meta/argument_specs.yml (and meta/main.yml).

    make role-readmes                 rewrite every role's README.md (.cache/venv/bin/python scripts/role_readmes.py)
    ... scripts/role_readmes.py --check   fail, naming the files, when a README.md differs from what would be written
                                      (make lint runs this, so the READMEs stay in step with the argument specs)

Each README has the role's description, every entry point's variables (type, default, choices, required,
description, with Ansible markup such as O() and V() turned into Markdown) and an example play. The examples
are kept below in EXAMPLES; a variable an example sets that the role's argument spec does not know is an error,
so a renamed variable cannot leave a stale example behind.
"""
import argparse
import difflib
import pathlib
import sys

import yaml
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
COLLECTION = "restate.admin"

# One example play per role: the variables a typical run sets. Checked against the argument spec.
EXAMPLES = {
    "invocation_cleanup": {
        "title": "Purge what completed more than 14 days ago, failed invocations of Checkout only",
        "vars": {
            "invocation_cleanup_retention": "14d",
            "invocation_cleanup_service": "Checkout",
            "invocation_cleanup_result": "failure",
        },
    },
    "bulk_cancel": {
        "title": "Cancel the suspended invocations of Checkout, kill what has not stopped a minute later",
        "vars": {
            "bulk_cancel_filters": {"service": "Checkout", "status": ["suspended"]},
            "bulk_cancel_kill_after": 60,
            "bulk_cancel_max_invocations": 5000,
        },
    },
    "deployment_release": {
        "title": "Release checkout v2: register it, set retention again, retire what v1 served once drained",
        "vars": {
            "deployment_release_uri": "http://checkout-v2.internal:9080",
            "deployment_release_service_settings": {"Checkout": {"journal_retention": "7d"}},
            "deployment_release_drain_timeout": 600,
        },
    },
    "deployment_cleanup": {
        "title": "Remove the drained deployments registered more than a week ago, at most 20 per run",
        "vars": {
            "deployment_cleanup_older_than": "7d",
            "deployment_cleanup_max_deployments": 20,
        },
    },
    "stuck_invocations": {
        "title": "Resume stuck invocations on the latest deployment, kill those created more than 2 days ago",
        "vars": {
            "stuck_invocations_deployment": "latest",
            "stuck_invocations_kill_older_than": "2d",
        },
    },
}


class SpecError(Exception):
    pass


# Ansible's documentation markup (https://docs.ansible.com/ansible/devel/dev_guide/ansible_markup.html)
MARKUP = [
    (re.compile(r"L\(([^)]*?),\s*([^)]*)\)"), lambda m: f"[{m[1]}]({m[2]})"),
    (re.compile(r"U\(([^)]*)\)"), lambda m: f"<{m[1]}>"),
    (re.compile(r"I\(([^)]*)\)"), lambda m: f"*{m[1]}*"),
    (re.compile(r"B\(([^)]*)\)"), lambda m: f"**{m[1]}**"),
    # O(), RV(): an option or return value, maybe of another plugin (fqcn#type:name); show its name
    (re.compile(r"(?:O|RV)\((?:[^)#]*#[^):]*:)?([^)=]*)(=[^)]*)?\)"), lambda m: f"`{m[1]}{m[2] or ''}`"),
    (re.compile(r"(?:C|V|E|M)\(([^)]*)\)"), lambda m: f"`{m[1]}`"),
    (re.compile(r"P\(([^)#]*)#([^)]*)\)"), lambda m: f"`{m[1]}` {m[2]}"),
    (re.compile(r"HORIZONTALLINE"), lambda m: "\n---\n"),
]


def md(text, role):
    """Ansible markup (one string or a list of paragraphs) as Markdown."""
    paragraphs = []
    for paragraph in as_list(text):
        for pattern, replace in MARKUP:
            paragraph = pattern.sub(replace, paragraph)
        paragraphs.append(" ".join(paragraph.split()))
    return "\n\n".join(paragraphs)


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def code(value):
    if isinstance(value, str):
        return f'`"{value}"`' if value == "" else f"`{value}`"
    return f"`{yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}`"


def option_lines(options, role, prefix=""):
    lines = []
    for name, spec in options.items():
        spec = spec or {}
        kind = spec.get("type", "str")
        if kind == "list" and spec.get("elements"):
            kind = f"list of {spec['elements']}"
        facts = [kind]
        if spec.get("required"):
            facts.append("**required**")
        if "default" in spec:
            facts.append(f"default {code(spec['default'])}")
        if spec.get("choices"):
            facts.append("one of " + ", ".join(code(c) for c in spec["choices"]))
        description = md(as_list(spec.get("description")), role).replace("\n\n", " ")
        lines.append(f"- `{prefix}{name}` ({'; '.join(facts)}): {description}")
        if spec.get("options"):
            lines.extend("  " + line for line in option_lines(spec["options"], role, prefix=f"{prefix}{name}."))
    return lines


def example_play(role, entry_point, options):
    example = EXAMPLES.get(role)
    if example is None:
        raise SpecError(f"roles/{role}: no example in {pathlib.Path(__file__).name}'s EXAMPLES; add one")
    unknown = sorted(set(example["vars"]) - set(options))
    if unknown:
        raise SpecError(
            f"roles/{role}: the example in {pathlib.Path(__file__).name} sets {', '.join(unknown)}, which "
            f"meta/argument_specs.yml ({entry_point}) does not define; update EXAMPLES"
        )
    missing = sorted(n for n, s in options.items() if (s or {}).get("required") and n not in example["vars"])
    if missing:
        raise SpecError(f"roles/{role}: the example leaves out the required {', '.join(missing)}; update EXAMPLES")
    role_entry = {"role": f"{COLLECTION}.{role}", "vars": example["vars"]}
    if entry_point != "main":
        role_entry = {"role": f"{COLLECTION}.{role}", "tasks_from": entry_point, "vars": example["vars"]}
    play = [{
        "name": example["title"],
        "hosts": "localhost",
        "connection": "local",
        "gather_facts": False,
        "module_defaults": {"group/restate.admin.all": {"admin_url": "https://restate.example.com:9070"}},
        "roles": [role_entry],
    }]
    return "---\n" + yaml.safe_dump(play, sort_keys=False, width=110)


def render(role_dir):
    role = role_dir.name
    specs_file = role_dir / "meta" / "argument_specs.yml"
    if not specs_file.exists():
        raise SpecError(f"roles/{role}: no meta/argument_specs.yml to document the role from")
    specs = (yaml.safe_load(specs_file.read_text()) or {}).get("argument_specs") or {}
    if "main" not in specs:
        raise SpecError(f"roles/{role}: meta/argument_specs.yml has no 'main' entry point")
    meta = yaml.safe_load((role_dir / "meta" / "main.yml").read_text()) or {}
    info = meta.get("galaxy_info") or {}

    out = [
        "<!-- Generated by scripts/role_readmes.py (make role-readmes) from meta/argument_specs.yml; edit that, not this. -->",
        f"# {COLLECTION}.{role}",
        "",
        md(specs["main"].get("short_description", info.get("description", "")), role),
        "",
    ]
    for entry_point, spec in specs.items():
        options = spec.get("options") or {}
        heading = "" if len(specs) == 1 else f" (entry point `{entry_point}`)"
        if len(specs) > 1:
            out += [f"## Entry point `{entry_point}`", "", md(spec.get("short_description", ""), role), ""]
        out += ["## What it does" + heading, ""]
        out += [md(paragraph, role) + "\n" for paragraph in as_list(spec.get("description"))]
        out += ["## Variables" + heading, ""]
        out += option_lines(options, role) or ["None."]
        out += [""]
        if entry_point == "main":
            out += ["## Example", "", "```yaml", example_play(role, entry_point, options).rstrip(), "```", ""]
    out += [
        "## Requirements",
        "",
        f"ansible-core {info.get('min_ansible_version', '2.16')} or later, and the Python package `requests` on the "
        "host that runs the tasks (usually the controller: the roles run their tasks through the local connection).",
        f"`ansible-doc -t role {COLLECTION}.{role}` shows the same variables.",
        "",
        "## License",
        "",
        f"{', '.join(as_list(info.get('license', 'GPL-3.0-or-later')))} (see COPYING at the root of the collection).",
        "",
    ]
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; fail when a README is out of date")
    args = parser.parse_args()
    stale = []
    try:
        for role_dir in sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir()):
            text = render(role_dir)
            target = role_dir / "README.md"
            current = target.read_text() if target.exists() else ""
            if current == text:
                continue
            if args.check:
                stale.append(target)
                sys.stdout.writelines(difflib.unified_diff(
                    current.splitlines(True), text.splitlines(True),
                    str(target.relative_to(ROOT)), "generated"))
            else:
                target.write_text(text)
                print(f"wrote {target.relative_to(ROOT)}")
    except SpecError as err:
        print(f"role_readmes: {err}", file=sys.stderr)
        return 2
    if stale:
        print("role_readmes: out of date (run make role-readmes): "
              + " ".join(str(p.relative_to(ROOT)) for p in stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
