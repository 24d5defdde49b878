"""Reading a file's fraudstream imports with ast: what the asset builders ship and the layout test checks."""

from __future__ import annotations

from fraudstream.packaging.modules import closure, imports, module_name, module_path
from fraudstream.paths import PACKAGE, REPO


def test_every_import_form_is_read_with_its_line_and_whether_it_is_lazy(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text(
        "import os\n"
        "import fraudstream.contract\n"
        "from fraudstream.online import stores, settings\n"
        "from fraudstream.online.messages import parse_event\n"
        "from . import checks\n"
        "def later():\n"
        "    from fraudstream.offline import model_artifact\n"
    )
    found = [(i.module, i.line, i.lazy) for i in imports(source, "fraudstream.probe")]
    assert found == [
        ("fraudstream.contract", 2, False),
        ("fraudstream.online.stores", 3, False),
        ("fraudstream.online.settings", 3, False),
        ("fraudstream.online.messages", 4, False),
        ("fraudstream.checks", 5, False),
        ("fraudstream.offline.model_artifact", 7, True),
    ]


def test_names_and_paths_of_modules_and_packages_map_both_ways():
    assert module_name(PACKAGE / "online" / "__init__.py") == "fraudstream.online"
    assert module_name(PACKAGE / "online" / "stores.py") == "fraudstream.online.stores"
    assert module_path("fraudstream.online") == PACKAGE / "online" / "__init__.py"
    assert module_path("fraudstream.online.nothing") is None


def test_the_closure_follows_imports_through_each_other_and_includes_the_packages_on_the_way():
    files = {p.relative_to(REPO).as_posix() for p in closure([PACKAGE / "online" / "predict.py"])}
    # predict -> features -> contract; predict -> stores -> contract; and the package __init__ files
    assert {"fraudstream/__init__.py", "fraudstream/online/__init__.py", "fraudstream/online/features.py",
            "fraudstream/contract.py", "fraudstream/online/stores.py"} <= files
    # the in-process scorer's lazy import of the model artifact is followed unless told otherwise
    assert "fraudstream/offline/model_artifact.py" in files
    skip_offline = closure([PACKAGE / "online" / "predict.py"], follow=lambda i: ".offline" not in i.module)
    assert not [p for p in skip_offline if "offline" in p.parts]
