"""The package layout the README describes, checked on the source: imports run one way, with no cycle and no
lazy import hiding one; the domains' directions hold; no source file grows past what a reader takes in."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SOURCE / "riskops"
MAX_LINES = 400
# Modules that know no domain: settings, storage, errors, time, logging, the request guard, process tuning.
CORE = ("config", "db", "errors", "clock", "logs", "pagination", "retry", "crisis", "guard", "runtime")
# (importer, imported) prefixes that must never meet: each names a direction the layout promises.
FORBIDDEN = [
    ("riskops.playbooks", "riskops.incidents"),  # a plan knows no incident; incidents use plans
    ("riskops.events", "riskops.webhooks"),  # the outbox sits below the sender
    ("riskops.notices", "riskops.risks"),  # the notice store knows no domain
    ("riskops.notices", "riskops.incidents"),
    ("riskops.notices", "riskops.reviews"),
    # the domains' order: risks below playbooks below incidents below integrations and reviews
    ("riskops.risks", "riskops.playbooks"),
    ("riskops.risks", "riskops.incidents"),
    ("riskops.risks", "riskops.reviews"),
    # the register's model below what builds on it: the control library's rules, treatment plans, continuity
    ("riskops.risks", "riskops.controls"),
    ("riskops.risks", "riskops.treatments"),
    ("riskops.risks", "riskops.continuity"),
    ("riskops.playbooks", "riskops.continuity"),  # a plan knows no process: continuity resolves its figures
    ("riskops.incidents", "riskops.integrations"),
    ("riskops.incidents", "riskops.reviews"),
    # quantified loss builds on the register and its plans, and the reviews and the console show it
    ("riskops.risks", "riskops.quant"),
    ("riskops.treatments", "riskops.quant"),
    ("riskops.continuity", "riskops.quant"),
    ("riskops.quant", "riskops.reviews"),
    ("riskops.quant", "riskops.console"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(node: ast.Import | ast.ImportFrom, known: dict[str, Path]) -> Iterator[str]:
    """The riskops modules an import statement loads (`from riskops.x import y` loads riskops.x.y if a module)."""
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names if a.name.startswith("riskops"))
        return
    if node.level or not node.module or not node.module.startswith("riskops"):
        return
    submodules = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known]
    # `from riskops import errors` loads the module errors; the package itself only when a name is its own.
    yield from submodules if len(submodules) == len(node.names) else [node.module, *submodules]


def graph() -> tuple[dict[str, set[str]], list[str]]:
    """Module-level import edges between riskops modules, and the imports found inside functions."""
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    lazy = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        top = set(tree.body)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            targets = [t for t in imported(node, known) if t in known and t != name]
            if node not in top and targets:
                lazy.append(f"{path.relative_to(SOURCE)}:{node.lineno} imports {', '.join(targets)}")
            edges[name].update(targets)
    return edges, lazy


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_the_package() -> None:
    edges, _ = graph()
    assert {"riskops.app", "riskops.worker", "riskops.events.service", "riskops.risks.matrices.service"} <= set(edges)
    assert "riskops.events.service" in edges["riskops.webhooks.service"]  # webhooks import events


def test_no_import_cycle() -> None:
    assert cycles(graph()[0]) == []


def test_cycle_finder_finds_one() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_lazy_import_of_the_package() -> None:
    assert graph()[1] == []


@pytest.mark.parametrize(("importer", "imported_prefix"), FORBIDDEN)
def test_imports_run_one_way(importer: str, imported_prefix: str) -> None:
    edges, _ = graph()
    wrong = sorted(
        f"{source} -> {target}"
        for source, targets in edges.items()
        if source == importer or source.startswith(importer + ".")
        for target in targets
        if target.startswith(imported_prefix)
    )
    assert wrong == []


def test_the_core_knows_no_domain() -> None:
    edges, _ = graph()
    core = {f"riskops.{name}" for name in CORE}
    assert sorted(f"{source} -> {target}" for source in core for target in edges[source] - core) == []


def test_routes_are_only_mounted_by_the_app() -> None:
    """Cross-domain calls go through service functions, never another module's routes."""
    edges, _ = graph()
    borrowers = sorted(
        f"{source} -> {target}"
        for source, targets in edges.items()
        for target in targets
        if target.endswith(".routes") and source != "riskops.app"
    )
    assert borrowers == []


def test_no_source_file_is_long() -> None:
    long = {
        str(path.relative_to(SOURCE)): count
        for path in PACKAGE.rglob("*.py")
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
