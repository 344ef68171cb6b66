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


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level names of the non-standard modules that ``unveil/`` imports -> the files."""
    import sys

    found: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "unveil" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


#: modules of the ``scale`` extra (pip install 'unveil[scale]')
OPTIONAL = {"ray", "pyarrow"}


def test_every_imported_package_is_a_declared_dependency():
    """One ``pip install -c constraints.txt .`` must give everything the code imports: each
    third-party module maps to a distribution named in pyproject's dependencies. Ray and pyarrow
    (which comes with ``ray[data]``) belong to the ``scale`` extra: their imports answer a missing
    package with a line naming ``pip install 'unveil[scale]'``."""
    import re
    from importlib.metadata import distributions, packages_distributions

    import tomllib

    project = tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["project"]

    def names(reqs):
        return {re.split(r"[\s<>=!~\[;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}

    core = names(project["dependencies"])
    assert "ray" in names(project["optional-dependencies"]["scale"])
    dists = {k: set(v) for k, v in packages_distributions().items()}
    for d in distributions():  # a top_level.txt that names only a native module (dlib-bin)
        for f in d.files or ():
            if len(f.parts) == 2 and f.parts[1] == "__init__.py":
                dists.setdefault(f.parts[0], set()).add(d.metadata["Name"])
    missing = []
    for top, files in sorted(_third_party_imports().items()):
        owners = {d.lower().replace("_", "-") for d in dists.get(top, [])}
        assert owners, f"{top} (imported in {sorted(files)}) is not installed"
        if top in OPTIONAL:
            continue
        if not owners & core:
            missing.append(f"{top} ({'/'.join(sorted(owners))}) in {sorted(files)}")
    assert not missing, "imported but not declared in pyproject.toml: " + "; ".join(missing)
