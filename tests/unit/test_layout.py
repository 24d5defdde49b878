"""One room per concern, dependencies one way: every import of the product, read with `ast`, follows the rules.

The rules (docs/development.md: "Layout"): root modules import no room; `offline` and `online` import only root
modules and never each other; `packaging` only root modules; `local` may use offline, online and
packaging; `operate` may use offline, online and local; `cli` may use everything and nothing imports
it. Outside the package: the Lambda handlers import online, the processing job offline and online,
`stacks/` the names of contract, stack_outputs and paths, the settings and telemetry names and the producer limits of online,
the SageMaker job requests and packaging; flink_sql/ imports only the contract and the Flink properties (shipped
beside it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from fraudstream.packaging.modules import Import, imports, module_name
from fraudstream.paths import FLINK_SQL, LAMBDAS, PACKAGE, PROCESSING_JOB, REPO

ROOMS = ("offline", "online", "local", "operate", "packaging", "cli")
# importer zone -> zones it may import
ALLOWED = {
    "root": {"root"},
    "offline": {"root", "offline"},
    "online": {"root", "online"},
    "packaging": {"root", "packaging"},
    "local": {"root", "offline", "online", "packaging", "local"},
    "operate": {"root", "offline", "online", "local", "operate"},
    "cli": {"root", *ROOMS},
    "lambdas": {"root", "online"},
    "training": {"root", "offline", "online"},
    "app": {"root", "packaging", "offline.model_artifact", "offline.features"},
    "stacks": {"root", "online.settings", "online.telemetry", "online.produce", "offline.sagemaker_jobs", "packaging"},
    "flink_sql": {"contract", "flink_properties"},  # shipped in the application zip beside main.py
}
# The one exception: the in-process scorer (local runs only) loads model.tar.gz with xgboost when it is built.
EXCEPTIONS = {("fraudstream.online.scorers", "fraudstream.offline.model_artifact", True)}


def zone_of_module(name: str) -> str:
    """The zone of a fraudstream module: root, a room, or (for stacks' finer rules) room.module."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else "root"


def zone_of_file(path: Path, name: str) -> str:
    top = path.relative_to(REPO).parts[0]
    if top == PACKAGE.name:
        return zone_of_module(name)
    return {"app.py": "app", "stacks": "stacks", "lambdas": "lambdas", "training": "training",
            "flink_sql": "flink_sql"}[top]


def allowed(zone: str, target: str) -> bool:
    rules = ALLOWED[zone]
    target_zone = zone_of_module(target)
    detailed = ".".join(target.split(".")[1:3])  # e.g. "online.settings"
    return target_zone in rules or detailed in rules


def violations(path: Path, name: str | None = None, place: Path | None = None) -> list[str]:
    """What ``path`` imports against the rules, as the file ``place`` (default: itself) named ``name``."""
    place = place or path
    name = name or module_name(place)
    zone = zone_of_file(place, name)
    found: list[Import] = imports(path, name)
    return [f"{place.relative_to(REPO)}:{i.line}: {zone} imports {i.module}" for i in found
            if not allowed(zone, i.module) and (name, i.module, i.lazy) not in EXCEPTIONS]


def product_files() -> list[Path]:
    files = [*PACKAGE.rglob("*.py"), *(REPO / "stacks").glob("*.py"), *LAMBDAS.glob("*/handler.py"),
             PROCESSING_JOB, REPO / "app.py", *FLINK_SQL.glob("*.py")]
    return sorted(f for f in files if "__pycache__" not in f.parts)


def test_every_import_of_the_product_follows_the_rules_between_rooms():
    problems = [problem for path in product_files() for problem in violations(path)]
    assert problems == []


def test_the_package_has_exactly_the_documented_rooms():
    rooms = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert rooms == set(ROOMS)


@pytest.mark.parametrize("module, source, expected", [
    ("fraudstream.online.planted", "from fraudstream.offline import train\n", "online imports fraudstream.offline.train"),
    ("fraudstream.offline.planted", "import fraudstream.online.stores\n", "offline imports fraudstream.online.stores"),
    ("fraudstream.contract_planted", "from fraudstream.local import pipeline\n", "root imports fraudstream.local.pipeline"),
    ("fraudstream.operate.planted", "def f():\n    from fraudstream.cli import main\n", "operate imports fraudstream.cli.main"),
    ("fraudstream.local.planted", "from ..operate import deployed\n", "local imports fraudstream.operate.deployed"),
])
def test_a_planted_violation_is_reported(tmp_path, module, source, expected):
    # Given a module that breaks a rule (its file elsewhere, its name inside the package)
    planted = PACKAGE / "planted_probe.py"  # only its place in the repository matters; it is never written
    path = tmp_path / "planted.py"
    path.write_text(source)
    # When its imports are checked under that name
    found = [p.split(": ", 1)[1] for p in violations(path, module, planted)]
    # Then the violation is named
    assert found == [expected]


def test_the_allowed_exception_is_only_the_lazy_import_of_the_model_artifact_format(tmp_path):
    eager = tmp_path / "scorers.py"
    eager.write_text("from fraudstream.offline import model_artifact\n")
    assert violations(eager, "fraudstream.online.scorers", PACKAGE / "online" / "scorers.py")
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def load():\n    from fraudstream.offline import model_artifact\n")
    assert violations(lazy, "fraudstream.online.scorers", PACKAGE / "online" / "scorers.py") == []




def imports_of_tests(path: Path) -> list[str]:
    """The test modules (not tests/support) that ``path`` imports, with their lines."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        found += [f"{node.lineno}: imports {name}" for name in names
                  if name.startswith("tests.") and not name.startswith("tests.support")]
    return found


def test_no_test_module_imports_another_test_module_or_a_conftest(tmp_path):
    """Shared test pieces live in tests/support (docs/development.md: "Dependencies and tests")."""
    problems = [f"{path.relative_to(REPO)}:{problem}" for path in sorted((REPO / "tests").rglob("*.py"))
                if "__pycache__" not in path.parts for problem in imports_of_tests(path)]
    assert problems == []
    planted = tmp_path / "test_planted.py"
    planted.write_text("import tests.support.kafka\nfrom tests.flink.conftest import run_bounded\n")
    assert imports_of_tests(planted) == ["2: imports tests.flink.conftest"]
