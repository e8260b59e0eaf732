"""The shape of the core, checked from its import graph (read with the standard library's ``ast``).

- no import cycles between the core's modules (imports inside functions count too);
- a stage imports only earlier stages and ``base`` (data flows one way, see docs/architecture.md);
- the core never imports a face (ComfyUI, Gradio, the CLI or the node pack);
- no private ``_name`` is imported from another module;
- each package's ``__init__`` only imports from its own modules and lists ``__all__``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "trailcam_core"

#: Stages in data-flow order; a package may import only packages before it in this list.
STAGES = ["base", "models", "ingest", "detections", "subset", "crop", "tags", "embed", "mosaic",
          "lora", "generate", "gan", "atlas", "cull", "samples"]
FACES = ("comfy", "comfy_api", "comfy_nodes", "folder_paths", "gradio", "gradio_client", "trailcam_cli",
         "gradio_app", "server", "nodes", "execution")


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import in ``path``, relative ones resolved."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, [a.name for a in node.names], node.lineno))
    return out


def core_graph() -> dict[str, set[str]]:
    """Module -> core modules it imports (``from pkg import submodule`` counts as the submodule)."""
    files = {module_name(p): p for p in CORE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        for target, names, _ in imports(path):
            if not target.startswith("trailcam_core"):
                continue
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in files]
            graph[mod].update(subs or [target])
            if subs and len(subs) < len(names):
                graph[mod].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), plus self-imports."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def stage_of(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_core_has_no_import_cycles():
    found = cycles(core_graph())
    assert not found, "import cycles in the core:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_a_stage_imports_only_earlier_stages():
    bad = []
    for mod, targets in core_graph().items():
        here = stage_of(mod)
        for target in targets:
            there = stage_of(target)
            if not here or not there or there == here:
                continue
            assert here in STAGES, f"{mod}: package {here!r} is not in the stage order of this test"
            assert there in STAGES, f"{target}: package {there!r} is not in the stage order of this test"
            if STAGES.index(there) > STAGES.index(here):
                bad.append(f"{mod} imports {target} (a later stage)")
    assert not bad, "\n".join(bad)


def test_the_core_imports_no_face():
    bad = [f"{module_name(p)}:{line} imports {target}"
           for p in CORE.rglob("*.py") for target, _, line in imports(p)
           if target.split(".")[0] in FACES]
    assert not bad, "\n".join(bad)


def test_no_private_name_is_imported_across_modules():
    modules = {module_name(p) for p in CORE.rglob("*.py")}
    bad = []
    for p in CORE.rglob("*.py"):
        bad += [f"{module_name(p)}:{line} imports {name} from {target}"
                for target, names, line in imports(p) if target.startswith("trailcam_core")
                for name in names if name.startswith("_") and name != "__version__"]
        # ... nor reached through an imported module (``cct._Image``)
        tree = ast.parse(p.read_text(encoding="utf-8"))
        aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("trailcam_core"):
                aliases |= {a.asname or a.name for a in node.names if f"{node.module}.{a.name}" in modules}
            elif isinstance(node, ast.Import):
                aliases |= {a.asname for a in node.names if a.asname and a.name in modules}
        bad += [f"{module_name(p)}:{node.lineno} uses {node.value.id}.{node.attr}"
                for node in ast.walk(tree) if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr.startswith("_") and not node.attr.startswith("__")]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("init", sorted(CORE.glob("*/__init__.py")), ids=lambda p: p.parent.name)
def test_package_init_only_imports_its_modules_and_lists_all(init: Path):
    package = module_name(init)
    tree = ast.parse(init.read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue                                             # the docstring
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, ast.ImportFrom):
            target = (package + "." + node.module) if node.level == 1 and node.module else (node.module or "")
            assert node.level == 1 or target.startswith(package + "."), \
                f"{package}/__init__.py imports from {target}: only its own modules belong there"
            names.update(a.asname or a.name for a in node.names)
            continue
        if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["__all__"]:
            exported = ast.literal_eval(node.value)
            continue
        raise AssertionError(f"{package}/__init__.py holds code at line {node.lineno}: it only imports and lists __all__")
    assert "exported" in locals(), f"{package}/__init__.py has no __all__"
    assert sorted(exported) == sorted(set(exported)), f"{package}.__all__ lists a name twice"
    missing = set(exported) - names
    assert not missing, f"{package}.__all__ names what it does not import: {sorted(missing)}"
