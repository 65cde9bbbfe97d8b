"""Check the site scripts/docs.sh built (.cache/docs-site/html; make lint runs this after the build).

- every module (plugins/modules/*.py) has its page, and every role its page with a section per entry point
  of its meta/argument_specs.yml, the example play (Examples) and the report section (scripts/role_readmes.py);
- the README, the changelog and every docs/*.md have their page;
- every internal link of every page resolves: the file exists and, for a link with a #fragment, the target
  page has an element with that id.
Prints what it checked; exits 1 naming every missing page and broken link.
"""
import html.parser
import pathlib
import sys
import urllib.parse

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
SITE = ROOT / ".cache" / "docs-site" / "html"


class Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()
        self.links = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) and tag in ("a", "link", "script", "img"):
                self.links.append(attrs[key])


def parse(path):
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def expected_pages():
    """(page, what it documents, ids it must have)"""
    pages = []
    for module in sorted((ROOT / "plugins" / "modules").glob("*.py")):
        if not module.name.startswith("_"):
            pages.append((f"{module.stem}_module.html", f"module {module.stem}", []))
    for role in sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir()):
        specs = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
        ids = [f"ansible-collections-restate-admin-{role.name.replace('_', '-')}-role-entrypoint-{ep}" for ep in specs]
        ids += ["examples", f"ansible-collections-restate-admin-{role.name.replace('_', '-')}-role-report"]
        pages.append((f"{role.name}_role.html", f"role {role.name} ({', '.join(specs)})", ids))
    pages.append(("readme.html", "README.md", []))
    pages.append(("changelog.html", "the changelog", []))
    for doc in sorted((ROOT / "docs").glob("*.md")):
        pages.append((f"docs/{doc.stem}.html", f"docs/{doc.name}", []))
    return pages


def main():
    if not (SITE / "index.html").exists():
        print(f"docs_check: no site in {SITE.relative_to(ROOT)}; run scripts/docs.sh (make docs) first", file=sys.stderr)
        return 2
    problems = []
    parsed = {path: parse(path) for path in SITE.rglob("*.html")}
    for page, what, ids in expected_pages():
        path = SITE / page
        if path not in parsed:
            problems.append(f"no page for {what}: {page}")
            continue
        problems += [f"{page}: no section {i} ({what})" for i in ids if i not in parsed[path].ids]
    links = 0
    for path, page in sorted(parsed.items()):
        for link in page.links:
            url = urllib.parse.urlsplit(link)
            if url.scheme or url.netloc or link.startswith(("/", "mailto:")):
                continue  # external, or the theme's link to the web site's root
            target = (path.parent / urllib.parse.unquote(url.path)).resolve() if url.path else path
            links += 1
            where = f"{path.relative_to(SITE)}: link {link}"
            if not target.exists():
                problems.append(f"{where}: no such file")
            elif url.fragment and target.suffix == ".html":
                ids = parsed.get(target) or parse(target)
                if url.fragment not in ids.ids:
                    problems.append(f"{where}: no element with id {url.fragment!r}")
    for problem in problems:
        print(f"docs_check: {problem}", file=sys.stderr)
    print(f"docs_check: {len(parsed)} pages, {len(expected_pages())} expected ones, {links} internal links checked; "
          + ("FAILED" if problems else "all present and resolving"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
