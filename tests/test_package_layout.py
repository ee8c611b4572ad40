"""The package's shape: Qt only under gui/, no torch on the inference path, data installed,
imports one way and without circles, modules that fit on a few screens."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "app" / "valvereader"
MAX_LINES = 600
# Over MAX_LINES for now, with the line count they may not exceed (none at present).
OVER_LIMIT: dict[str, int] = {}
# The one-way rule: a module may import its own layer and the layers before it, never a later
# one. Keys are the package's top-level modules and subpackages.
LAYERS: list[tuple[str, frozenset[str]]] = [
    ("base", frozenset({"valvereader", "errors", "paths", "geometry", "atomic", "logs", "radiograph", "settings",
                        "prediction", "explain", "noise", "halves", "catalogue"})),
    ("io", frozenset({"io"})),
    ("preprocess", frozenset({"preprocess"})),
    ("model", frozenset({"model"})),
    ("inference", frozenset({"inference"})),
    ("report", frozenset({"report", "review", "review_export", "node"})),
    ("gui", frozenset({"gui"})),
    ("entry", frozenset({"cli", "__main__"})),
]
# Training and the phantom generator stand apart: they may use the product up to the report
# layer, and only the command line reaches them (its subcommands).
APART = frozenset({"training", "phantoms"})


def _modules_outside_gui() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = rel.parts
        if "gui" in parts or parts[-1] == "__main__":
            continue
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _qt_after_importing(names: list[str], skip_unimportable: bool) -> str:
    """The Qt modules loaded after importing ``names`` in a fresh interpreter (comma-separated)."""
    step = ("    try:\n        importlib.import_module(name)\n    except ImportError:\n        pass\n" if skip_unimportable
            else "    importlib.import_module(name)\n")
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        + step
        + "bad = sorted(m for m in sys.modules if m.startswith(('PySide6', 'PyQt', 'shiboken')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_nothing_outside_gui_imports_qt() -> None:
    bad = _qt_after_importing(_modules_outside_gui(), skip_unimportable=True)
    assert bad == "", f"Qt imported outside gui/: {bad}"


def test_viewer_models_do_not_import_qt() -> None:
    """gui/models/ is the viewer without Qt: every module of it imports, and no Qt comes with it."""
    names = sorted(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
                   for path in (PACKAGE / "gui" / "models").rglob("*.py"))
    assert "valvereader.gui.models.state" in names
    bad = _qt_after_importing(names, skip_unimportable=False)
    assert bad == "", f"Qt imported by gui/models/: {bad}"


def test_command_line_and_inference_path_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from valvereader.cli import build_parser\n"
        "import valvereader.inference.predictor, valvereader.inference.classify, valvereader.io\n"
        "build_parser()\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_wheel_carries_templates_samples_and_weights(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    if out.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {out.stderr[-300:]}")
    wheel = next(tmp_path.glob("valvereader-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = [n for n in names if n.startswith("valvereader/resources/templates/") and n.endswith("template.yaml")]
    assert len(templates) >= 8
    for card in (ROOT / "weights").glob("*.json"):
        assert f"valvereader/weights/{card.name}" in names
        for entry in json.loads(card.read_text()).get("files", {}).values():
            assert f"valvereader/weights/{entry['path']}" in names
    samples = [n for n in names if n.startswith("valvereader/resources/samples/")]
    if (ROOT / "resources" / "samples").is_dir() and any((ROOT / "resources" / "samples").iterdir()):
        assert samples


def test_every_subpackage_is_installed() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    present = {".".join(path.parent.relative_to(PACKAGE.parent).parts) for path in PACKAGE.rglob("__init__.py")}
    assert present <= listed, f"packages missing from pyproject.toml [tool.setuptools] packages: {sorted(present - listed)}"


# --- imports one way, without circles, every import counted ----------------------------------
def _module_files() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports: at the top, in functions, under TYPE_CHECKING."""
    files = _module_files()
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                wanted = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in files else prefix
                          for alias in node.names]
            else:
                continue
            for target in wanted:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root, targets in graph.items():
        if root in index:
            continue
        work = [(root, iter(sorted(targets)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_circle_finder_finds_a_circle_through_a_lazy_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _circles(graph) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_import_graph_counts_imports_in_functions_and_for_type_checking() -> None:
    graph = _import_graph()
    # gui.models.valves imports the templates inside a function; gui.window_api the widgets for type checking only
    assert "valvereader.catalogue.templates" in graph["valvereader.gui.models.valves"]
    assert "valvereader.gui.canvas" in graph["valvereader.gui.window_api"]
    assert "valvereader.catalogue" in graph["valvereader.gui.main_window"]


def test_no_import_circles() -> None:
    circles = _circles(_import_graph())
    assert not circles, "modules that import each other (directly or round a circle): " + "; ".join(
        " <-> ".join(group) for group in circles)


def _layer(module: str) -> str:
    top = module.split(".")[1] if "." in module else module
    if top in APART:
        return "apart"
    for name, members in LAYERS:
        if top in members:
            return name
    raise AssertionError(f"{module} is in no layer: add {top!r} to LAYERS or APART in this test")


def test_imports_go_one_way() -> None:
    order = {name: rank for rank, (name, _) in enumerate(LAYERS)}
    wrong = []
    for module, targets in sorted(_import_graph().items()):
        here = _layer(module)
        for target in sorted(targets):
            there = _layer(target)
            if here == "apart":
                bad = there != "apart" and order[there] > order["report"]
            elif there == "apart":
                bad = here != "entry"
            else:
                bad = order[there] > order[here]
            if bad:
                wrong.append(f"{module} ({here}) imports {target} ({there})")
    assert not wrong, "imports against the one-way rule:\n" + "\n".join(wrong)


def test_modules_fit_the_line_limit() -> None:
    too_long = {}
    for module, path in _module_files().items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > OVER_LIMIT.get(module, MAX_LINES):
            too_long[module] = lines
    assert not too_long, f"modules over {MAX_LINES} lines (split them by concept): {too_long}"


def test_line_limit_exceptions_are_still_needed() -> None:
    files = _module_files()
    for module in OVER_LIMIT:
        assert module in files, f"{module} is gone: drop it from OVER_LIMIT"
        lines = len(files[module].read_text(encoding="utf-8").splitlines())
        assert lines > MAX_LINES, f"{module} has {lines} lines now: drop it from OVER_LIMIT"
