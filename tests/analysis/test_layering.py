"""analysis/ is pure pandas / numpy: no torch, no model, nothing from run/, probes/ or scope."""
import ast
from pathlib import Path

import sgdscope.analysis

ALLOWED_OWN = {"store", "store.reader", "quantities"}   # relative imports outside analysis/
FORBIDDEN = {"torch", "sgdscope"}                        # absolute: torch, or sgdscope itself


def test_analysis_imports_only_the_store_and_the_vocabulary():
    folder = Path(sgdscope.analysis.__file__).parent
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
                assert not roots & FORBIDDEN, (path, roots)
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    assert node.module.split(".")[0] not in FORBIDDEN, (path, node.module)
                elif node.level == 2:   # from .. import x / from ..x import y
                    targets = [node.module] if node.module else [a.name for a in node.names]
                    assert set(targets) <= ALLOWED_OWN, (path, targets)
                else:
                    assert node.level == 1, path


def test_public_api_is_listed():
    for name in sgdscope.analysis.__all__:
        assert getattr(sgdscope.analysis, name) is not None
        assert not name.startswith("_")
