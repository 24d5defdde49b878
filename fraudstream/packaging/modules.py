"""Which fraudstream modules a file imports, read from its source with `ast` (nothing is imported).

The packaging builders ship what their entry points import instead of a hand-kept file list, and
tests/unit/test_layout.py checks the import rules between the rooms with the same reading.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from fraudstream.paths import PACKAGE, REPO

PACKAGE_NAME = PACKAGE.name


@dataclass(frozen=True)
class Import:
    module: str  # dotted name, e.g. "fraudstream.online.stores"
    line: int
    lazy: bool  # inside a function (imported when it runs, not with the module)


def module_name(path: Path) -> str:
    """The dotted name of a file of this repository ("fraudstream/online/__init__.py" -> "fraudstream.online")."""
    parts = list(path.resolve().relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_path(name: str) -> Path | None:
    """The file of a fraudstream module or package, or None when there is none."""
    base = REPO.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports(path: Path, name: str | None = None) -> list[Import]:
    """Every fraudstream module ``path`` imports: `import a.b`, `from a import b` (b a module or a name).

    ``name`` is the file's dotted module name (default: from its place in the repository); relative
    imports are resolved against it.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend(Import(alias.name, child.lineno, lazy) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = _absolute(child, package)
                for alias in child.names:
                    # `from fraudstream.online import stores` names a module; `from x import name` names the module x.
                    submodule = f"{base}.{alias.name}"
                    found.append(Import(submodule if module_path(submodule) else base, child.lineno, lazy))
            visit(child, inside)

    visit(tree, False)
    return [i for i in found if i.module == PACKAGE_NAME or i.module.startswith(PACKAGE_NAME + ".")]


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    base = package.split(".")[: len(package.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def closure(paths: list[Path], follow: callable = lambda _import: True) -> set[Path]:
    """The fraudstream files ``paths`` import, directly or through each other (``follow`` may skip an import),
    with the package __init__ files on the way."""
    seen: set[Path] = set()
    todo = list(paths)
    while todo:
        for found in imports(todo.pop()):
            if not follow(found):
                continue
            parts = found.module.split(".")
            for depth in range(1, len(parts) + 1):
                file = module_path(".".join(parts[:depth]))
                if file is not None and file not in seen:
                    seen.add(file)
                    todo.append(file)
    return seen
