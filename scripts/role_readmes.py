"""Write roles/<role>/README.md from the role's meta/argument_specs.yml, meta/report.yml (and meta/main.yml).

    make role-readmes                 rewrite every role's README.md (.cache/venv/bin/python scripts/role_readmes.py)
    ... scripts/role_readmes.py --check   fail, naming the files, when a README.md differs from what would be written
                                      (make lint runs this, so the READMEs stay in step with the argument specs)
    ... scripts/role_readmes.py --site DIR   add the report section to the role pages antsibull-docs wrote into DIR
                                      (scripts/docs.sh runs this, so the docs site shows what the README shows)

One source for each part of a role's documentation, shown in the README, on the docs site's role page and (the
first three) by ansible-doc -t role:
- the description and every entry point's variables: meta/argument_specs.yml (type, default, choices, required,
  description, with Ansible markup such as O() and V() turned into Markdown);
- the example play: the main entry point's ``examples`` in meta/argument_specs.yml. A variable it sets that the
  argument spec does not know, or a required one it leaves out, is an error, so a renamed variable cannot leave a
  stale example behind;
- the report: meta/report.yml, the fact the role sets (``fact``), what it is (``description``) and its ``keys``,
  each with a ``type`` and a ``description`` (Ansible markup). ansible-doc has no place for it.
"""
import argparse
import difflib
import pathlib
import sys

import yaml
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
COLLECTION = "restate.admin"


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


def example_play(role, spec):
    """The main entry point's ``examples`` text, checked against its variables."""
    text = spec.get("examples")
    if not isinstance(text, str) or not text.strip():
        raise SpecError(f"roles/{role}: meta/argument_specs.yml has no 'examples' (an example play, as text) for 'main'")
    try:
        plays = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SpecError(f"roles/{role}: the examples of meta/argument_specs.yml are not valid YAML: {err}") from None
    uses = [entry for play in plays or [] for entry in play.get("roles") or []
            if isinstance(entry, dict) and entry.get("role") == f"{COLLECTION}.{role}"]
    if not uses:
        raise SpecError(f"roles/{role}: the example play does not use the role {COLLECTION}.{role}")
    options = spec.get("options") or {}
    for entry in uses:
        given = entry.get("vars") or {}
        unknown = sorted(set(given) - set(options))
        if unknown:
            raise SpecError(f"roles/{role}: the example sets {', '.join(unknown)}, which meta/argument_specs.yml (main) "
                            "does not define; update its examples")
        missing = sorted(n for n, s in options.items() if (s or {}).get("required") and n not in given)
        if missing:
            raise SpecError(f"roles/{role}: the example leaves out the required {', '.join(missing)}; update its examples")
    return "---\n" + text.strip() + "\n"


def load_report(role_dir):
    """meta/report.yml, checked: {fact, description, keys: {name: {type, description}}}."""
    role = role_dir.name
    path = role_dir / "meta" / "report.yml"
    if not path.exists():
        raise SpecError(f"roles/{role}: no meta/report.yml to document the role's report fact from")
    report = yaml.safe_load(path.read_text()) or {}
    if not isinstance(report.get("fact"), str) or not report.get("description"):
        raise SpecError(f"roles/{role}: meta/report.yml needs 'fact' (the fact's name) and 'description'")
    for name, key in (report.get("keys") or {}).items():
        if not isinstance(key, dict) or not key.get("type") or not key.get("description"):
            raise SpecError(f"roles/{role}: meta/report.yml: key {name} needs a 'type' and a 'description'")
    return report


def report_lines(report, role, markup):
    """The report section's body: the description, then a line per key (nested keys indented)."""
    def keys(entries, indent):
        lines = []
        for name, key in entries.items():
            lines.append(f"{indent}- {markup('C(' + name + ')', role)} ({key['type']}): "
                         f"{markup(key['description'], role).replace(chr(10) * 2, ' ')}")
            if key.get("keys"):
                lines += [""] if markup is rst else []
                lines += keys(key["keys"], indent + "  ")
                lines += [""] if markup is rst else []
        return lines
    out = [markup(f"The role sets the fact C({report['fact']}). " + report["description"], role), ""]
    if report.get("keys"):
        out += keys(report["keys"], "") + [""]
    return out


# The same markup as reStructuredText, for the docs site's pages
RST_MARKUP = [
    (re.compile(r"L\(([^)]*?),\s*([^)]*)\)"), lambda m: f"`{m[1]} <{m[2]}>`__"),
    (re.compile(r"U\(([^)]*)\)"), lambda m: f"`{m[1]} <{m[1]}>`__"),
    (re.compile(r"I\(([^)]*)\)"), lambda m: f"*{m[1]}*"),
    (re.compile(r"B\(([^)]*)\)"), lambda m: f"**{m[1]}**"),
    (re.compile(r"(?:O|RV)\((?:[^)#]*#[^):]*:)?([^)=]*)(=[^)]*)?\)"), lambda m: f"``{m[1]}{m[2] or ''}``"),
    (re.compile(r"(?:C|V|E|M)\(([^)]*)\)"), lambda m: f"``{m[1]}``"),
    (re.compile(r"P\(([^)#]*)#([^)]*)\)"), lambda m: f"``{m[1]}`` {m[2]}"),
]


def rst(text, role):
    paragraphs = []
    for paragraph in as_list(text):
        for pattern, replace in RST_MARKUP:
            paragraph = pattern.sub(replace, paragraph)
        paragraphs.append(" ".join(paragraph.split()))
    return "\n\n".join(paragraphs)


def site_section(role_dir):
    """The report section of the role's page on the docs site, as reStructuredText."""
    role = role_dir.name
    report = load_report(role_dir)
    label = f"ansible_collections.{COLLECTION}.{role}_role__report"
    return "\n".join([f".. _{label}:", "", "Report", "^^^^^^", ""] + report_lines(report, role, rst) + [""])


def add_to_site(site):
    """Put each role's report section into its page, after the main entry point's examples (before the next
    entry point or the page's end)."""
    for role_dir in sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir()):
        page = pathlib.Path(site) / f"{role_dir.name}_role.rst"
        text = page.read_text()
        labels = [(m.start(), m[1]) for m in re.finditer(r"^\.\. _ansible_collections\.[^\n]*__entrypoint-([^:]*):", text, re.M)]
        main = [n for n, (unused_start, name) in enumerate(labels) if name == "main"]
        if not main:
            raise SpecError(f"{page}: no section of the entry point main to add the report to")
        ends = [labels[main[0] + 1][0]] if main[0] + 1 < len(labels) else []
        ends += [m.start() for m in re.finditer(r"^\.\. (Extra links|Parsing errors)$", text, re.M) if m.start() > labels[main[0]][0]]
        end = min(ends, default=len(text))
        page.write_text(text[:end].rstrip("\n") + "\n\n" + site_section(role_dir) + "\n" + text[end:])


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
            out += ["## Example", "", "```yaml", example_play(role, spec).rstrip(), "```", ""]
            out += ["## Report", ""] + report_lines(load_report(role_dir), role, md)
    out += [
        "## Requirements",
        "",
        f"ansible-core {info.get('min_ansible_version', '2.16')} or later, and the Python package `requests` on the "
        "host that runs the tasks (usually the controller: the roles run their tasks through the local connection).",
        f"`ansible-doc -t role {COLLECTION}.{role}` shows the same variables and example; the documentation site's "
        "role page shows the report too.",
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
    parser.add_argument("--site", metavar="DIR", help="add the report sections to the role pages in DIR instead")
    args = parser.parse_args()
    stale = []
    try:
        if args.site:
            add_to_site(args.site)
            return 0
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
