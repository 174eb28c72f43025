"""The package's layers, read from the source with ``ast`` (nothing is imported).

* Nothing below the wrappers imports from ``optjx.wrappers``: the core (``optjx/_*.py``),
  the building blocks, the schedules, schedule-free, full-batch and training helpers take
  what they share from the core.
* The aliases (``optjx.optimizers``) are imported only by ``optjx/__init__.py`` and by
  each other: nothing below the aliases imports from above it.
* One definition of each helper: no two functions anywhere in the package have the same
  body (docstrings aside), apart from bodies of three statements or fewer.
"""

from __future__ import annotations

import ast
import pathlib
from collections import defaultdict

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "optjx"
BELOW_WRAPPERS = ("full_batch", "training", "transforms", "schedules", "schedule_free")
SHORTEST_COMPARED = 4  # statements: shorter bodies (a return, a delegation) may repeat


def _modules() -> dict[str, ast.Module]:
    return {
        path.relative_to(PACKAGE.parent).as_posix(): ast.parse(path.read_text(), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _package_of(relative: str) -> str:
    """``optjx/a/b.py`` -> ``optjx.a``, ``optjx/a/__init__.py`` -> ``optjx.a``."""
    parts = relative[: -len(".py")].split("/")
    return ".".join(parts[:-1])


def _imported(relative: str, tree: ast.Module) -> set[str]:
    """Every module name the file imports, anywhere (function-level imports too); for
    ``from X import y`` both ``X`` and ``X.y``, relative imports made absolute."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = _package_of(relative).split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _is_in(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _below_wrappers(relative: str) -> bool:
    parts = relative.split("/")
    if len(parts) == 2:  # optjx/<module>.py: the core modules are the private ones
        return parts[1].startswith("_") and parts[1] != "__init__.py"
    return parts[1] in BELOW_WRAPPERS


def test_nothing_below_the_wrappers_imports_them():
    offences = [
        f"{relative} imports {name}"
        for relative, tree in _modules().items()
        if _below_wrappers(relative)
        for name in sorted(_imported(relative, tree))
        if _is_in(name, "optjx.wrappers")
    ]
    assert not offences, "\n".join(offences)


def test_only_the_namespace_and_the_aliases_import_the_aliases():
    offences = [
        f"{relative} imports {name}"
        for relative, tree in _modules().items()
        if relative != "optjx/__init__.py" and not relative.startswith("optjx/optimizers/")
        for name in sorted(_imported(relative, tree))
        if _is_in(name, "optjx.optimizers")
    ]
    assert not offences, "\n".join(offences)


def _body_without_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.stmt]:
    body = node.body
    first = body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return body[1:]
    return body


def _statements(body: list[ast.stmt]) -> int:
    return sum(isinstance(n, ast.stmt) for stmt in body for n in ast.walk(stmt))


def _repeated_bodies(modules: dict[str, ast.Module]) -> list[list[str]]:
    """Groups of functions (nested ones too) with one body, docstrings aside."""
    places = defaultdict(list)
    for relative, tree in modules.items():
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = _body_without_docstring(node)
            if _statements(body) < SHORTEST_COMPARED:
                continue
            key = ast.dump(ast.Module(body=body, type_ignores=[]))
            places[key].append(f"{relative}:{node.lineno} {node.name}")
    return [sorted(where) for where in places.values() if len(where) > 1]


def test_no_helper_body_is_written_twice():
    repeated = _repeated_bodies(_modules())
    assert not repeated, "the same body in several functions: " + "; ".join(
        ", ".join(where) for where in repeated
    )


def test_the_checks_see_the_package():
    # Guards against a vacuous pass: the walk finds the modules and their imports.
    modules = _modules()
    assert "optjx/_tree.py" in modules and "optjx/optimizers/adam.py" in modules
    assert _below_wrappers("optjx/_tree.py") and _below_wrappers("optjx/full_batch/lbfgs.py")
    assert not _below_wrappers("optjx/wrappers/monitor.py")
    assert not _below_wrappers("optjx/__init__.py")
    assert _is_in("optjx.wrappers.monitor", "optjx.wrappers")
    assert not _is_in("optjx.wrappers_extra", "optjx.wrappers")
    relative = ast.parse("from ..wrappers import monitor\nfrom . import _common")
    seen = _imported("optjx/full_batch/lbfgs.py", relative)
    assert "optjx.wrappers.monitor" in seen and "optjx.full_batch._common" in seen
    namespace = _imported("optjx/__init__.py", modules["optjx/__init__.py"])
    assert any(_is_in(n, "optjx.optimizers") for n in namespace)
    # A helper copied under another name, with another docstring, is found; a short one
    # (three statements) is not compared.
    helper = """
def {name}(tree, dtype):
    \"\"\"{doc}\"\"\"
    total = jnp.zeros([], dtype)
    for x in jax.tree.leaves(tree):
        total = total + jnp.sum(x).astype(dtype)
    return total

def short_{name}(x):
    y = x + 1
    return y
"""
    copies = {
        "a.py": ast.parse(helper.format(name="first", doc="One.")),
        "b.py": ast.parse(helper.format(name="second", doc="Two.")),
    }
    assert _repeated_bodies(copies) == [["a.py:2 first", "b.py:2 second"]]


def test_all_lists_exactly_the_public_namespace():
    # __all__ is explicit (star imports and documentation tools read it): every public name
    # optjx exports is in it, and nothing else.
    import types

    import optjx

    # Subpackages bound as attributes by the imports (optjx.transforms, ...) are layout, not
    # API; the public modules are imported by name (parallel, schedules, typing).
    public = {
        name
        for name, value in vars(optjx).items()
        if not name.startswith("_")
        and (not isinstance(value, types.ModuleType) or name in ("parallel", "schedules", "typing"))
    } | {"__version__"}
    assert set(optjx.__all__) == public, (
        f"missing from __all__: {sorted(public - set(optjx.__all__))}; "
        f"in __all__ but not exported: {sorted(set(optjx.__all__) - public)}"
    )
    assert len(optjx.__all__) == len(set(optjx.__all__)), "a name is listed twice"
