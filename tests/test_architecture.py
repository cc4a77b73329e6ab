"""The layout docs/design.md describes, held: apps depend one way and no module imports itself
back through others. Imports are read from the source with `ast` (module level and function
bodies alike), so a late import cannot hide a cycle. Run alone with
`pytest tests/test_architecture.py`."""

from __future__ import annotations

import ast
import collections
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("zenith", "monitoring", "jobs")

# (importer prefix, imported prefix, why it is forbidden)
FORBIDDEN = [
    ("zenith.infra", "jobs", "plumbing imports neither app"),
    ("zenith.infra", "monitoring", "plumbing imports neither app"),
    ("monitoring", "jobs", "monitoring is told what to watch (monitoring.registry)"),
    ("jobs.models", "jobs.services", "models know nothing of services"),
    ("jobs.errors", "jobs", "errors are the bottom of the app"),
    ("jobs.sql", "jobs.services", "the SQL module serves services, not the reverse"),
    ("jobs.engine", "jobs.services", "the engine runs batches, the services decide"),
    ("jobs.engine", "jobs.importing", "codecs that need importing register themselves"),
    ("jobs.engine", "jobs.forensics", "the engine knows no domain"),
    ("jobs.engine", "jobs.datatypes.", "the engine knows the data-type contract only"),
    ("jobs.forensics", "jobs.", "forensic rules are plain functions over values"),
    ("jobs.datatypes", "jobs.services", "handlers do not call services"),
    ("jobs.importing", "jobs.services", "reading a file does not submit it"),
    ("jobs.selectors", "jobs.services", "the read side writes nothing"),
]
# The data-type contract the engine may import (see FORBIDDEN's "jobs.datatypes." rule).
ENGINE_MAY_IMPORT = {"jobs.datatypes.registry", "jobs.datatypes.base"}
for layer in ("jobs.engine", "jobs.services", "jobs.datatypes", "jobs.importing", "jobs.selectors", "jobs.sql",
              "jobs.models", "jobs.forensics"):
    FORBIDDEN += [(layer, "jobs.web", "nothing below the pages imports them"),
                  (layer, "jobs.api", "nothing below the API imports it")]


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (a name imported from a package counts as the
    submodule when there is one, else as the package)."""
    modules = _modules()
    edges: dict[str, set[str]] = collections.defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    targets.append(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{name}: relative import; the project uses absolute imports")
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges[name].add(target)
        edges.setdefault(name, set())
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _matches(module: str, prefix: str) -> bool:
    return module.startswith(prefix) if prefix.endswith(".") else module == prefix or module.startswith(prefix + ".")


def test_it_has_no_import_cycle():
    assert _cycles(import_graph()) == []


def test_it_keeps_apps_and_layers_one_way():
    broken = []
    for importer, imported in sorted(import_graph().items()):
        for target in sorted(imported):
            for source_prefix, target_prefix, why in FORBIDDEN:
                if not _matches(importer, source_prefix) or not _matches(target, target_prefix):
                    continue
                if source_prefix == "jobs.engine" and target in ENGINE_MAY_IMPORT:
                    continue
                if target.startswith(source_prefix + "."):
                    continue  # inside its own package
                broken.append(f"{importer} -> {target}: {why}")
    assert broken == []


def test_the_checks_see_a_cycle_and_a_forbidden_edge():
    """The graph walk itself: a made-up cycle is found, and the rule table catches a
    monitoring -> jobs edge (so the two tests above cannot pass by reading nothing)."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = import_graph()
    assert "jobs.engine.dispatch" in graph and "jobs.models" in graph["jobs.engine.dispatch"]
    assert any(_matches("monitoring.health", s) and _matches("jobs.models", t) for s, t, _ in FORBIDDEN)
