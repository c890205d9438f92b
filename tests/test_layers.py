"""Every import between the top-level packages points down the layer order (no cycle, no lazy
import upward).

The order is declared once, in README.md's "Layout" table (top first); this test reads it and
walks every import of every module with `ast`, the ones inside functions included, so a
lazy `from scoring... import` in the indexer counts like a module-level one.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOT_RUNTIME = {"tests", "bench", "scripts", "examples", "docs"}
ROW = re.compile(r"^\| `([\w.]+?)/?` \|")


def layers() -> list[str]:
    """The first table of the README's Layout section (top first), ground first."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    table = section[section.index("\n|"):].split("\n\n", 1)[0]
    names = [m.group(1) for line in table.splitlines() if (m := ROW.match(line))]
    return [name.removesuffix(".py") for name in reversed(names)]


def packages() -> set[str]:
    found = {p.name for p in ROOT.iterdir() if p.is_dir() and any(p.glob("*.py")) and p.name not in NOT_RUNTIME}
    return found | {"app"}


def modules_of(package: str) -> list[Path]:
    return [ROOT / "app.py"] if package == "app" else sorted((ROOT / package).rglob("*.py"))


def imported_packages(path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(top-level package, line) of every absolute import in the file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(top, node.lineno) for name in names if (top := name.split(".")[0]) in known]
    return found


def upward_imports(order: list[str]) -> list[str]:
    rank = {name: i for i, name in enumerate(order)}
    wrong = []
    for package in order:
        for path in modules_of(package):
            for target, line in imported_packages(path, set(rank)):
                if target != package and rank[target] > rank[package]:
                    wrong.append(f"{path.relative_to(ROOT)}:{line} imports {target} (above {package})")
    return wrong


def test_the_layout_names_every_package_once() -> None:
    order = layers()
    assert len(order) == len(set(order)), order
    assert set(order) == packages(), "README.md's Layout table and the top-level packages differ"


def test_every_import_points_down() -> None:
    assert upward_imports(layers()) == []


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The walk sees imports inside functions, not only at the top of a module."""
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    if True:\n        from scoring.analyze import analyze_collection\n")
    assert imported_packages(module, {"scoring", "store"}) == [("scoring", 3)]


@pytest.mark.parametrize("package", ["store", "app"])
def test_the_ends_of_the_order(package: str) -> None:
    """store is the ground (imports no other package); app.py is the top (nothing imports it)."""
    order = layers()
    assert package in (order[0], order[-1])
