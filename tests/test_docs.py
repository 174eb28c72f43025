"""The documentation site builds with warnings as errors, renders, covers the API and
cites what a reader can follow; optjx type-checks.

A broken page, a dead link or cross-reference, or a docstring that fails to render fails
``mkdocs build --strict``. The site is built once, and its pages are then read for what the
build lets through: a Sphinx role (``:func:`x```) or a ``$`` that arithmatex did not mark
as math, shown literally, and a formula the vendored KaTeX cannot parse (with Node.js,
where it is installed). The API index must link every page of ``docs/api/``, every public
name needs an API entry, and every name optjx shares with optax but defines differently a
row in the porting-from-optax table. ``mypy optjx`` runs with the configuration in
pyproject.toml. The tools come with the ``docs`` and ``test`` extras; the tests skip,
naming what is missing, only where they are not installed.
"""

from __future__ import annotations

import html.parser
import importlib
import importlib.util
import inspect
import os
import pathlib
import re
import subprocess
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SPHINX_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|attr|mod|data|obj|exc|ref|term):")


def _require(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[test]' installs it)")


def _run(args: list[str], tmp_path: pathlib.Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # The worktree's optjx, whatever is installed; no banner noise from mkdocs-material.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["NO_MKDOCS_2_WARNING"] = "1"
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built once for every test below: ``(directory, build result)``."""
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        _require(module)
    tmp_path = tmp_path_factory.mktemp("docs")
    site = tmp_path / "site"
    result = _run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], tmp_path)
    return site, result


@pytest.fixture(scope="module")
def built(site):
    directory, result = site
    if result.returncode != 0:
        pytest.fail("the site did not build (test_site_builds_strict says why)")
    return directory


def test_site_builds_strict(site):
    site, result = site
    assert result.returncode == 0, result.stdout + result.stderr
    # The API reference rendered the docstrings, math included.
    page = (site / "api" / "optimizers" / "index.html").read_text()
    assert 'id="optjx.adam"' in page and "arithmatex" in page
    assert (site / "javascripts" / "katex" / "katex.min.js").exists()


class _PageText(html.parser.HTMLParser):
    """The text of a built page: the prose a reader sees (outside code, scripts and math),
    and the formulas arithmatex marked for KaTeX.

    arithmatex turns every formula it recognises into an element of class ``arithmatex``
    holding ``\\(...\\)`` or ``\\[...\\]``, which KaTeX renders in the browser; a ``$``
    left in the prose is one it did not recognise (``$b > $``, a space before the closing
    ``$``), shown literally.
    """

    SKIPPED = {"code", "pre", "script", "style", "kbd", "samp"}
    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}

    def __init__(self):
        super().__init__()
        self.open: list[tuple[str, bool, bool]] = []  # (tag, skipped, math)
        self.prose: list[str] = []
        self.formulas: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        math = "arithmatex" in (dict(attrs).get("class") or "").split()
        if math and not any(m for _, _, m in self.open):
            self.formulas.append("")
        self.open.append((tag, tag in self.SKIPPED, math))

    def handle_endtag(self, tag):
        while self.open and self.open.pop()[0] != tag:
            pass

    def handle_data(self, data):
        if any(math for _, _, math in self.open):
            self.formulas[-1] += data
        elif data.strip() and not any(skipped for _, skipped, _ in self.open):
            self.prose.append(data.strip())


def _pages(built: pathlib.Path):
    for page in sorted(built.rglob("*.html")):
        if page.parts[len(built.parts)] in ("search", "assets"):
            continue
        parser = _PageText()
        parser.feed(page.read_text())
        yield str(page.relative_to(built)), parser


def _prose(built: pathlib.Path):
    for name, parser in _pages(built):
        for text in parser.prose:
            yield name, text


def test_no_sphinx_role_in_the_docstrings():
    # mkdocstrings renders docstrings as Markdown: a role is shown as ":func:" + code.
    found = [
        f"{path}:{number}: {line.strip()}"
        for path in sorted((ROOT / "optjx").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if SPHINX_ROLE.search(line)
    ]
    assert not found, "write ``name`` (Markdown), not a Sphinx role:\n" + "\n".join(found)


def test_no_sphinx_role_or_unrendered_math_on_the_pages(built):
    literal = [
        f"{page}: {text[:120]!r}"
        for page, text in _prose(built)
        if "$" in text or SPHINX_ROLE.search(text)
    ]
    assert not literal, "shown literally (a Sphinx role, or math KaTeX will not see):\n" + (
        "\n".join(literal)
    )


KATEX_CHECK = """
const katex = require(process.argv[2]);
const formulas = JSON.parse(require("fs").readFileSync(process.argv[3], "utf8"));
const failures = [];
for (const [where, tex, display] of formulas) {
  try {
    katex.renderToString(tex, { displayMode: display, throwOnError: true });
  } catch (error) {
    failures.push(`${where}: ${tex.slice(0, 80)}\\n    ${error.message}`);
  }
}
console.log(JSON.stringify(failures));
"""


def test_every_formula_renders_with_katex(built, tmp_path):
    # The browser renders the math with the vendored KaTeX and shows a formula it cannot
    # parse in red: parse each one here with that same KaTeX, under Node.js.
    import json
    import shutil

    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the formulas cannot be parsed with KaTeX")
    formulas = []
    for name, parser in _pages(built):
        for text in parser.formulas:
            tex = text.strip()
            display = tex.startswith("\\[")
            formulas.append([name, tex[2:-2].strip(), display])
    assert len(formulas) > 100, "arithmatex marked almost no math: the check sees nothing"
    listing = tmp_path / "formulas.json"
    listing.write_text(json.dumps(formulas))
    script = tmp_path / "check.js"
    script.write_text(KATEX_CHECK)
    katex = ROOT / "docs" / "javascripts" / "katex" / "katex.min.js"
    result = subprocess.run(
        [node, str(script), str(katex), str(listing)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    failures = json.loads(result.stdout)
    assert not failures, "KaTeX cannot render:\n" + "\n".join(failures)


def test_api_index_links_every_api_page():
    index = (ROOT / "docs" / "api" / "index.md").read_text()
    linked = set(re.findall(r"\]\(([\w-]+\.md)\)", index))
    pages = {p.name for p in (ROOT / "docs" / "api").glob("*.md")} - {"index.md"}
    assert pages - linked == set(), f"docs/api/index.md does not link {sorted(pages - linked)}"


# References a reader of the site, the README or a docstring cannot follow: notes of a
# course they never took, a numbered issue of a tracker they cannot see. Cite the paper or
# book (author, year, section) or a public link (owner/repo#number) instead.
UNFOLLOWABLE = re.compile(
    r"course notes|the course(?! of)|lecture notes|the lecture\b|(?<![\w/#])issue \d+",
    re.IGNORECASE,
)


def test_no_reference_a_reader_cannot_follow():
    sources = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "benchmarks" / "README.md"]
    sources += sorted((ROOT / "docs").rglob("*.md"))
    sources += sorted((ROOT / "optjx").rglob("*.py")) + sorted((ROOT / "examples").glob("*.py"))
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if UNFOLLOWABLE.search(line)
    ]
    assert not found, "cite a paper, a book or a public link:\n" + "\n".join(found)


def _api_entries() -> set[str]:
    """Every ``::: name`` of docs/api/, with the ``members: [...]`` listed under a module."""
    entries = set()
    for page in (ROOT / "docs" / "api").glob("*.md"):
        current = None
        for line in page.read_text().splitlines():
            if line.startswith("::: "):
                current = line.split()[1]
                entries.add(current)
            elif current and line.strip().startswith("members:"):
                members = re.findall(r"[\w]+", line.split(":", 1)[1])
                entries.update(f"{current}.{member}" for member in members)
    return entries


def _resolve(dotted: str):
    """The object ``optjx.a.b`` names (``None`` where it names nothing)."""
    import importlib

    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for part in parts[1:]:
        obj = getattr(obj, part, None)
    return obj


def _public_names(module):
    """``(name, object)`` for the module's ``__all__``, or else its public functions and
    classes defined in optjx or optax (not the helpers it imports for its own use)."""
    if hasattr(module, "__all__"):
        yield from ((name, getattr(module, name)) for name in module.__all__ if name[0] != "_")
        return
    for name, obj in vars(module).items():
        home = getattr(obj, "__module__", None) or ""
        if name.startswith("_") or not callable(obj) or isinstance(obj, types.ModuleType):
            continue
        if home.startswith("optax") or home.startswith(module.__name__.split(".")[0]):
            if module.__name__ != "optjx.parallel" or home == "optjx.parallel":
                yield name, obj


def test_every_public_name_has_an_api_entry():
    import optjx
    import optjx.typing

    entries = _api_entries()
    documented = [_resolve(entry) for entry in entries]  # one object may have two paths
    index = (ROOT / "docs" / "api" / "index.md").read_text()
    missing = []
    for module in (optjx, optjx.schedules, optjx.parallel, optjx.typing):
        for name, obj in _public_names(module):
            full = f"{module.__name__}.{name}"
            if isinstance(obj, types.ModuleType):
                continue  # its names are checked here, as a module
            if (getattr(obj, "__module__", None) or "").startswith("optax"):
                if f"`{full}`" not in index:  # re-exported: named in the API index
                    missing.append(f"{full} (optax's: name it in docs/api/index.md)")
            elif full not in entries and not any(obj is entry for entry in documented):
                missing.append(full)
    assert not missing, "public names with no `::: name` in docs/api/*.md: " + ", ".join(missing)


def test_mypy_passes(tmp_path):
    _require("mypy")
    # The cache in .mypy_cache/ at the repository root: a second run takes seconds.
    result = _run([sys.executable, "-m", "mypy", "optjx"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _public_functions():

    import optjx

    for module in (optjx, optjx.schedules, optjx.parallel):
        for name, obj in vars(module).items():
            if name.startswith("_") or not inspect.isfunction(obj):
                continue
            if obj.__module__.startswith("optjx"):
                yield f"{module.__name__}.{name}", obj


def test_every_public_function_documents_its_arguments_and_result():
    # help(optjx.X) and the site show one text: the function's own docstring.
    functions = dict(_public_functions())
    assert len(functions) > 40
    for name, function in functions.items():
        doc = function.__doc__ or ""
        assert "Returns:" in doc, name
        code = inspect.unwrap(function).__code__  # through optjx._twin's alias decorator
        if code.co_argcount + code.co_kwonlyargcount:
            assert "Args:" in doc, name


def test_transformation_docstrings_carry_rule_and_example():
    import optjx

    for name in ("adam", "sgd", "radam", "scale_by_adam", "trace", "lookahead", "polyak_averaging"):
        doc = getattr(optjx, name).__doc__
        assert (
            "$$" in doc and "Examples:" in doc and "Differences from PyTorch and optax:" in doc
        ), name


def _shape(obj):
    """What a caller of ``obj`` depends on: a NamedTuple's fields, or each argument's
    name, kind and default."""
    if isinstance(obj, type) and hasattr(obj, "_fields"):
        return obj._fields
    try:
        parameters = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return None
    return [(p.name, p.kind, repr(p.default)) for p in parameters]


def test_porting_optax_lists_every_shared_name_that_differs():
    # A name in both libraries whose arguments, defaults or state fields differ must be in
    # the porting table (a difference in meaning alone is the table's to state).
    import optax

    import optjx

    page = (ROOT / "docs" / "porting-optax.md").read_text()
    undocumented = []
    for name, obj in _public_names(optjx):
        for home in ("optax", "optax.contrib"):
            theirs = getattr(importlib.import_module(home), name, None)
            if theirs is None or theirs is obj or isinstance(obj, types.ModuleType):
                continue
            if _shape(theirs) != _shape(obj) and f"`{home}.{name}" not in page:
                undocumented.append(f"{home}.{name}")
    assert optax.__version__ and not undocumented, (
        f"differ from optax {optax.__version__} and are missing in docs/porting-optax.md: "
        + ", ".join(undocumented)
    )
