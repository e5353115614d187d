"""Imports point down only: each layer imports nothing from the layers above it (ARCHITECTURE.md)."""
import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sgdscope"

# what each layer may NOT import (everything above it)
ABOVE = {
    "store": ["quantities", "problem", "operators", "linalg", "noise", "landscape", "optim", "toys", "probes", "scope",
              "analysis", "run", "sweep", "cli", "zoo"],
    "quantities": ["problem", "operators", "linalg", "noise", "landscape", "optim", "probes", "scope", "analysis", "run",
                   "sweep", "cli"],
    "analysis": ["problem", "operators", "linalg", "noise", "landscape", "optim", "toys", "probes", "scope", "run",
                 "sweep", "cli", "zoo"],
    "probes": ["scope", "run", "sweep", "analysis", "viz", "reproduce", "cli"],
    "scope": ["run", "sweep", "analysis", "viz", "reproduce", "cli"],
    "run": ["sweep", "viz", "reproduce", "cli"],
    "sweep": ["viz", "reproduce", "cli"],
    "viz": ["problem", "operators", "linalg", "noise", "landscape", "optim", "toys", "probes", "scope", "run", "sweep",
            "reproduce", "cli", "zoo"],
    "reproduce": ["cli"],
}


def _imports(path: Path) -> set[str]:
    """The sgdscope subpackages / modules a file imports (relative or absolute)."""
    tree = ast.parse(path.read_text())
    rel = path.relative_to(SRC).parts
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(rel[:-1])[: len(rel) - node.level] if node.level > 1 else list(rel[:-1])
                target = base + (node.module.split(".") if node.module else [])
                if not target:  # "from . import x" at the package root
                    found.update(a.name for a in node.names)
                else:
                    found.add(target[0])
            elif node.module and node.module.startswith("sgdscope."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("sgdscope."))
    return found


@pytest.mark.parametrize("layer", sorted(ABOVE))
def test_a_layer_imports_nothing_above_it(layer):
    files = [SRC / f"{layer}.py"] if (SRC / f"{layer}.py").exists() else sorted((SRC / layer).rglob("*.py"))
    assert files
    for file in files:
        bad = _imports(file) & set(ABOVE[layer])
        assert not bad, f"{file.relative_to(SRC)} imports {sorted(bad)} from above the {layer} layer"


def test_figures_never_import_torch_or_a_model():
    for file in sorted((SRC / "viz").rglob("*.py")):
        tree = ast.parse(file.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        assert "torch" not in names, f"{file.relative_to(SRC)} imports torch"
