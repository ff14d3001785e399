"""The package's layers, read from the source: every import statement, at
module level or inside a function, of every module of keras_electra, the
recipes and the benchmarks.

Layers, bottom to top: `utils` < `models` < `training` < `pretraining` <
`conversion`; `data` builds on `utils` alone. A module imports its own layer
and the layers below, never above; there is no import cycle between modules;
scripts use the library and never each other. Backend-free: it reads text,
so one backend would do, and it is cheap on all three.
"""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "keras_electra")

# What each layer may import, besides itself.
ALLOWED = {
    "utils": set(),
    "data": {"utils"},
    "models": {"utils"},
    "training": {"utils", "models"},
    "pretraining": {"utils", "models", "training"},
    "conversion": {"utils", "models", "training", "pretraining"},
}
# keras-hub's pattern: the preset loader picks the `transformers` converter,
# which imports the models, with one lazy import.
DISPATCH = ("keras_electra.utils.preset_loading", "keras_electra.conversion")


def _module_name(path):
    relative = os.path.relpath(path, ROOT)[: -len(".py")].split(os.sep)
    if relative[-1] == "__init__":
        relative = relative[:-1]
    return ".".join(relative)


def _package_modules():
    modules = {}
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                modules[_module_name(path)] = path
    return modules


MODULES = _package_modules()


def _imports(path, known=MODULES):
    """The keras_electra modules that `path` imports (`from x import y`
    counts as `x.y` where that is a module)."""
    with open(path, encoding="utf-8") as file:
        tree = ast.parse(file.read(), path)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module] + [
                f"{node.module}.{alias.name}" for alias in node.names
            ]
        else:
            continue
        for name in names:
            if name.split(".")[0] != "keras_electra":
                continue
            while name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            found.add(name)
    return found


def _layer(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_the_layers_are_the_ones_documented():
    assert {_layer(m) for m in MODULES} - {None} == set(ALLOWED)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_only_its_layer_and_below(module):
    layer = _layer(module)
    if layer is None:
        return  # keras_electra/__init__.py: the public API gathers them all.
    for imported in _imports(MODULES[module]):
        target = _layer(imported)
        if target is None:
            raise AssertionError(f"{module} imports the top-level package")
        if target == layer or target in ALLOWED[layer]:
            continue
        if (module, imported.rsplit(".", 1)[0]) == DISPATCH or (
            module,
            imported,
        ) == DISPATCH:
            continue
        raise AssertionError(
            f"{module} ({layer}) imports {imported} ({target}); {layer} may "
            f"import only {sorted(ALLOWED[layer]) or 'nothing else'}"
        )


def _cycle(graph):
    """A list of modules forming a cycle in `graph`, or None."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                return stack[stack.index(child) :] + [child]
            if child not in state:
                found = visit(child)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle():
    graph = {
        module: {
            imported
            for imported in _imports(path)
            # A package's __init__ re-exports its modules: an edge from a
            # module to its own package is not a dependency on a sibling.
            if not module.startswith(imported + ".")
        }
        for module, path in MODULES.items()
        if module != "keras_electra"
    }
    # The one lazy dispatch import is allowed to close a loop through the
    # converter (it runs only when a `transformers` checkpoint is loaded).
    graph[DISPATCH[0]] = {
        m for m in graph[DISPATCH[0]] if not m.startswith(DISPATCH[1])
    }
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_layer_check_catches_a_model_importing_pretraining(tmp_path):
    path = tmp_path / "module.py"
    path.write_text(
        "def f():\n    from keras_electra.pretraining import pretrainer\n"
    )
    imported = _imports(str(path))
    assert "keras_electra.pretraining.pretrainer" in imported
    assert _layer("keras_electra.pretraining.pretrainer") == "pretraining"


def _scripts():
    for folder in ("recipes", "benchmarks"):
        for name in sorted(os.listdir(os.path.join(ROOT, folder))):
            if name.endswith(".py"):
                yield os.path.join(folder, name)


@pytest.mark.parametrize("script", list(_scripts()))
def test_scripts_use_the_library_not_each_other(script):
    path = os.path.join(ROOT, script)
    with open(path, encoding="utf-8") as file:
        source = file.read()
    assert "sys.path" not in source, f"{script} edits sys.path"
    siblings = {
        name[: -len(".py")]
        for folder in ("recipes", "benchmarks")
        for name in os.listdir(os.path.join(ROOT, folder))
        if name.endswith(".py")
    }
    for node in ast.walk(ast.parse(source, path)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            assert name.split(".")[0] not in siblings, (
                f"{script} imports {name}, another script"
            )


def test_private_keras_internals_only_in_the_compat_module():
    allowed = os.path.join("keras_electra", "utils", "keras_compat.py")
    for module, path in MODULES.items():
        if os.path.relpath(path, ROOT) == allowed:
            continue
        with open(path, encoding="utf-8") as file:
            tree = ast.parse(file.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(("keras.src", "keras_hub.src")), (
                    f"{module} imports {name}; only {allowed} may"
                )
