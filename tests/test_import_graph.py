"""The layering rule, checked on the source: csp_tf imports neither tfx_pipeline nor serving
(nor the console script's package, which nothing imports), and no module imports itself back
through others.

The graph is read statically (``ast``): every ``import`` / ``from ... import`` of every module of
the four packages, function-level ones included, because a lazy import still ties the layers
together. ``CSP_TF_IMPORT_GRAPH_ROOT=/path/to/checkout`` checks another tree (e.g. an older one,
to see the test fail there).
"""

from __future__ import annotations

import ast
import os
from typing import Dict, List, Optional, Set, Tuple

import pytest

PACKAGES = ("csp_tf", "tfx_pipeline", "serving", "csp_cli")
FORBIDDEN = {"csp_tf": ("tfx_pipeline", "serving", "csp_cli"),
             "tfx_pipeline": ("csp_cli",), "serving": ("csp_cli",)}
ROOT = os.environ.get("CSP_TF_IMPORT_GRAPH_ROOT") or os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))

Graph = Dict[str, Set[str]]


def _modules(root: str) -> Dict[str, str]:
    """{dotted module name: file path} of every module of PACKAGES under ``root``."""
    found = {}
    for package in PACKAGES:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, package)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for name in filenames:
                if name.endswith(".py"):
                    parts = os.path.relpath(os.path.join(dirpath, name), root)[:-3].split(os.sep)
                    if parts[-1] == "__init__":
                        parts.pop()
                    found[".".join(parts)] = os.path.join(dirpath, name)
    return found


def import_graph(root: str) -> Graph:
    """{module: modules of PACKAGES it imports anywhere in its body}."""
    modules = _modules(root)
    graph: Graph = {m: set() for m in modules}
    for module, path in modules.items():
        is_package = path.endswith("__init__.py")
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        # A module that imports by name (importlib.import_module, __import__) imports every
        # module whose dotted name appears in it as a string, e.g. a table of sub-commands.
        dynamic = any(isinstance(n, ast.Call) and getattr(n.func, "attr", getattr(
            n.func, "id", None)) in ("import_module", "__import__") for n in ast.walk(tree))
        for node in ast.walk(tree):
            targets: List[str] = []
            if dynamic and isinstance(node, ast.Constant) and node.value in modules:
                targets = [node.value]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package, up level - 1 packages
                    anchor = module.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # "from pkg import sub" imports the submodule; "from mod import name" the module
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            for target in targets:
                while target and target not in modules:  # "import a.b.c" of a non-module name
                    target = target.rpartition(".")[0]
                if target and target != module:
                    graph[module].add(target)
    return graph


def layer_violations(graph: Graph) -> List[Tuple[str, str]]:
    return sorted((m, t) for m, targets in graph.items() for t in targets
                  if t.split(".")[0] in FORBIDDEN.get(m.split(".")[0], ()))


def find_cycle(graph: Graph) -> Optional[List[str]]:
    """One import cycle as a path ``[a, b, ..., a]``, or None (iterative DFS, three colours)."""
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def _without(graph: Graph, edges) -> Graph:
    return {m: {t for t in targets if (m, t) not in edges} for m, targets in graph.items()}


def test_the_library_imports_no_pipeline_serving_or_cli_code():
    bad = layer_violations(import_graph(ROOT))
    assert not bad, "imports against the layering rule (docs/architecture.md):\n" + "\n".join(
        f"  {m} -> {t}" for m, t in bad)


def test_no_import_cycles():
    cycle = find_cycle(import_graph(ROOT))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checker_sees_function_level_imports_and_cycles(tmp_path):
    files = {
        "csp_tf/__init__.py": "",
        "csp_tf/a.py": "def f():\n    from serving import b\n",
        "csp_tf/e.py": "import importlib\nMODS = ['tfx_pipeline', 'numpy']\n"
                       "def g(m):\n    return importlib.import_module(m)\n",
        "csp_tf/sub/__init__.py": "from . import c\n",
        "csp_tf/sub/c.py": "from ..sub import d\n",
        "csp_tf/sub/d.py": "import csp_tf.sub.c as c\nimport numpy\n",
        "serving/__init__.py": "",
        "serving/b.py": "from csp_tf.a import f\n",
        "tfx_pipeline/__init__.py": "",
        "csp_cli/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = import_graph(str(tmp_path))
    assert graph["csp_tf.sub"] == {"csp_tf.sub.c"} and graph["csp_tf.sub.d"] == {"csp_tf.sub.c"}
    assert layer_violations(graph) == [("csp_tf.a", "serving.b"), ("csp_tf.e", "tfx_pipeline")]
    assert find_cycle(graph) == ["csp_tf.a", "serving.b", "csp_tf.a"]
    assert find_cycle(_without(graph, {("csp_tf.a", "serving.b")})) == [
        "csp_tf.sub.c", "csp_tf.sub.d", "csp_tf.sub.c"]
