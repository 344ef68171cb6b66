"""The package's import graph: no circle, and imports only run down the layers.

Every ``import`` in ``unveil/`` counts, at module level or inside a function (a deferred import is
still a dependency). ``from unveil.x import y`` counts as an import of ``unveil.x.y`` when ``y`` is
a module, else of ``unveil.x``.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "unveil"

#: Bottom first. A module may import its own layer and the layers below it, nothing above.
LAYERS = [
    {"errors", "version", "io", "face", "data", "masks", "viz"},
    {"models"},
    {"occlusion"},
    {"pipeline", "batch", "scale", "video"},
    {"eval"},
    {"train"},
    {"serve", "demo"},
    {"cli", "__main__", ""},  # "": the package itself (unveil.remove, the public API)
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _module(path: Path) -> str:
    parts = ["unveil", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    p = ROOT.parent / name.replace(".", "/")
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def graph() -> dict[str, set[str]]:
    edges = {}
    for path in ROOT.rglob("*.py"):
        me, out = _module(path), set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out |= {a.name for a in node.names if a.name.split(".")[0] == "unveil"}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                    and node.module.split(".")[0] == "unveil":
                subs = {f"{node.module}.{a.name}" for a in node.names if _is_module(f"{node.module}.{a.name}")}
                out |= subs if len(subs) == len(node.names) else subs | {node.module}
        edges[me] = {o for o in out if o != me}
    return edges


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_every_top_level_module_has_a_layer():
    tops = {_layer(m) for m in graph()}
    assert tops <= set(RANK), f"modules without a layer in LAYERS: {sorted(tops - set(RANK))}"


def test_no_import_circle():
    assert _cycles(graph()) == []


def test_imports_only_run_down_the_layers():
    up = sorted(f"{m} -> {o}" for m, outs in graph().items() for o in outs
                if RANK[_layer(o)] > RANK[_layer(m)])
    assert up == []


def test_the_graph_sees_deferred_imports_and_circles():
    """The checks above can fail: a function-level import is an edge, and a circle is found."""
    edges = graph()
    assert "unveil.models.registry" in edges["unveil.models.ifacenet"]
    assert "unveil.pipeline" in edges["unveil"]  # deferred inside unveil.remove
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("needle", ["save_checkpoint(", "scheduler(", "log.jsonl", "tqdm(total=cfg.steps"])
def test_one_module_under_train_runs_the_training_loop(needle):
    """Checkpointing, the LR schedule, the training log and the step progress bar live in the
    engine only: a family's task never re-does them."""
    users = sorted(p.name for p in (ROOT / "train").glob("*.py")
                   if needle in p.read_text() and p.name not in ("checkpoint.py", "schedule.py"))
    assert users == ["engine.py"], users
