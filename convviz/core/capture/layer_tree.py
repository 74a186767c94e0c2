"""The layer table as a tree in the model's real order, and which modules only pass data on.

The layer table lists module calls in the order they *finish* (a forward hook fires after
the module's children), so ``bn1.act`` comes before ``bn1``. Here each call hangs under
its nearest listed ancestor in the module path (``blocks.1.0.bn1.act`` → ``blocks.1.0.bn1``)
and siblings keep their call order, which gives the order calls *start*: a container
before its children, children in call order. No forward pass is needed: the finishing
order and the module paths determine it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

#: Module classes that hand their input on unchanged at inference.
PASS_THROUGH_TYPES = frozenset({
    "Identity", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
    "DropPath", "DropBlock2d",
})
#: Classes that are identity at inference but random during training.
DROPOUT_TYPES = frozenset({
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout", "DropPath", "DropBlock2d",
})
DROPOUT_NOTE = "does nothing at inference (eval mode passes values through unchanged)"


def base_name(name: str) -> str:
    """``layer1.0.relu:2`` → ``layer1.0.relu`` (the module path of a record name)."""
    return name.split(":", 1)[0]


def short_name(name: str) -> str:
    """Last path component with its call suffix: ``blocks.1.0.bn1.act`` → ``act``."""
    base, _, call = name.partition(":")
    tail = base.rsplit(".", 1)[-1]
    return f"{tail}:{call}" if call else tail


def is_pass_through(row) -> bool:
    """True for modules that do not change the values at inference (Identity, Dropout, DropPath …)."""
    return row.type in PASS_THROUGH_TYPES


def is_dropout(row) -> bool:
    return row.type in DROPOUT_TYPES


@dataclass
class LayerNode:
    """One module call in the tree. ``index`` is its position in the layer table's rows."""

    row: object
    index: int
    parent: "LayerNode | None" = None
    children: list["LayerNode"] = field(default_factory=list)
    depth: int = 0
    first: int = 0  #: smallest row index in this subtree (its call order among siblings)

    @property
    def name(self) -> str:
        return self.row.name

    @property
    def pass_through(self) -> bool:
        return is_pass_through(self.row)

    def position(self) -> int:
        """Index among the parent's children (or among the roots)."""
        siblings = self.parent.children if self.parent is not None else None
        return siblings.index(self) if siblings is not None else -1


@dataclass
class LayerTree:
    """Roots and every node in model order (pre-order: a container before its children)."""

    roots: list[LayerNode]
    order: list[LayerNode]

    def __post_init__(self):
        self.by_name = {node.name: node for node in self.order}
        self.position = {node.name: i for i, node in enumerate(self.order)}

    def names(self) -> list[str]:
        return [node.name for node in self.order]

    def node(self, name: str) -> LayerNode | None:
        return self.by_name.get(name)

    def step(self, name: str, delta: int, skip_pass_through: bool = False) -> str | None:
        """The layer ``delta`` places after ``name`` in model order (None past either end)."""
        candidates = [n.name for n in self.order if not (skip_pass_through and n.pass_through) or n.name == name]
        if name not in candidates:
            return candidates[0] if candidates else None
        i = candidates.index(name) + delta
        return candidates[i] if 0 <= i < len(candidates) else None


def _parent_name(name: str, known: set[str]) -> str | None:
    """Nearest listed ancestor of record ``name`` by module path."""
    parts = base_name(name).split(".")  # a module's second call hangs beside its first
    for cut in range(len(parts) - 1, 0, -1):
        candidate = ".".join(parts[:cut])
        if candidate in known:
            return candidate
    return None


def build_tree(rows) -> LayerTree:
    """The tree of ``rows`` (layer-table rows, in the order the calls finished)."""
    nodes = [LayerNode(row=row, index=i, first=i) for i, row in enumerate(rows)]
    by_name = {node.name: node for node in nodes}
    known = set(by_name)
    roots: list[LayerNode] = []
    for node in nodes:
        parent_name = _parent_name(node.name, known)
        parent = by_name.get(parent_name) if parent_name else None
        node.parent = parent
        (parent.children if parent is not None else roots).append(node)

    def settle(node: LayerNode, depth: int) -> int:
        node.depth = depth
        for child in node.children:
            node.first = min(node.first, settle(child, depth + 1))
        node.children.sort(key=lambda n: n.first)
        return node.first

    for root in roots:
        settle(root, 0)
    roots.sort(key=lambda n: n.first)
    order: list[LayerNode] = []

    def walk(node: LayerNode) -> None:
        order.append(node)
        for child in node.children:
            walk(child)

    for root in roots:
        walk(root)
    return LayerTree(roots, order)


def first_layer_for(rows, accepts) -> str | None:
    """Name of the first layer in model order whose row satisfies ``accepts(row)``."""
    return next((node.name for node in build_tree(rows).order if accepts(node.row)), None)
