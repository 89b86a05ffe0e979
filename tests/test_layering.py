"""components/ is grouped by stage, and data flows one way (the developers' guide, Style):
config -> openstack -> nodes -> cluster -> kubernetes. A stage imports only earlier ones;
the shared modules at the top (config, versions, naming, ...) import no stage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

COMPONENTS = Path(__file__).resolve().parent.parent / "components"
STAGES = ["openstack", "nodes", "cluster", "kubernetes"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("components"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("components"))
    return out


def _stage_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


@pytest.mark.parametrize("path", sorted(COMPONENTS.rglob("*.py")), ids=lambda p: str(p.relative_to(COMPONENTS)))
def test_a_stage_imports_only_earlier_stages(path):
    rel = path.relative_to(COMPONENTS)
    own = rel.parts[0] if len(rel.parts) > 1 else None
    allowed = STAGES[: STAGES.index(own) + 1] if own else []
    for module in _imports(path):
        stage = _stage_of(module)
        assert stage is None or stage in allowed, f"{rel} imports {module}: {own or 'a shared module'} " \
            f"may use only {allowed or 'no stage'}"


def test_node_target_belongs_to_the_openstack_stage():
    from components.nodes import phase
    from components.openstack.target import NodeTarget

    assert NodeTarget.__module__ == "components.openstack.target" and phase.NodeTarget is NodeTarget
