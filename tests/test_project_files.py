"""Pulumi.yaml, the dev stack and requirements: the CLI reads them, mocks never do."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components import config as config_mod
from components.config import KEYS, parse_config

ROOT = Path(__file__).resolve().parent.parent
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
_TYPE = {"string": "string", "secret": "string", "integer": "integer", "boolean": "boolean", "array": "array"}


def test_pulumi_yaml_validates_against_pulumis_schema():
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--schemafile", str(ROOT / "tests/schemas/pulumi-project.schema.json"),
         str(ROOT / "Pulumi.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_malformed_declaration(tmp_path):
    # Proves the validator bites: an array without `items` is invalid for the CLI.
    bad = dict(PROJECT, config={"allowedCidrs": {"type": "array"}})
    path = tmp_path / "Pulumi.yaml"
    path.write_text(yaml.safe_dump(bad))
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--schemafile", str(ROOT / "tests/schemas/pulumi-project.schema.json"),
         str(path)], capture_output=True, text=True)
    assert result.returncode != 0


def test_project_identity():
    assert PROJECT["name"] == "katak8s"
    assert PROJECT["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}
    assert PROJECT["description"].strip()


def test_config_block_matches_the_validated_contract():
    declared = PROJECT["config"]
    assert list(declared) == [k.name for k in KEYS], "Pulumi.yaml and components/config.py list different keys"
    for key in KEYS:
        decl = declared[key.name]
        assert decl["type"] == _TYPE[key.kind], key.name
        assert decl.get("description", "").strip(), f"{key.name} has no description"
        # A secret key is refused in plaintext by components/config.py, never by `secret: true`
        # beside a default (the CLI then refuses every stack that leaves it unset, F1).
        assert not (decl.get("secret") and "default" in decl), key.name
        if key.required:
            assert "default" not in decl, f"{key.name} is required, so it must have no default"
        else:
            assert "default" in decl, f"{key.name} is optional, so the CLI needs its default"
            assert decl["default"] == key.default, f"{key.name}: Pulumi.yaml {decl['default']!r} != {key.default!r}"
        if decl["type"] == "array":
            assert decl["items"] == {"type": "string"}


def test_dev_stack_is_complete_commented_and_valid():
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    stack = yaml.safe_load(text)["config"]
    raw = {k.split(":", 1)[1]: v for k, v in stack.items() if k.startswith("katak8s:")}
    cfg = parse_config({k: v if isinstance(v, (str, list)) else json.dumps(v) for k, v in raw.items()},
                       stack="dev")
    assert cfg.cluster_name == "dev"
    required = {k.name for k in KEYS if k.required}
    assert required <= set(raw), f"the dev stack must set every required key: {required - set(raw)}"
    # Every value a user edits has a comment just above it that says what to change.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s{2}(katak8s|openstack):\w+:", line):
            j = i - 1
            while j >= 0 and re.match(r"^\s{2}(katak8s|openstack):\w+:", lines[j]):
                j -= 1  # consecutive related keys share one comment
            assert lines[j].strip().startswith("#"), f"Pulumi.dev.yaml line {i + 1} has no comment: {line}"


@pytest.mark.parametrize("package,version", [
    ("pulumi", "3.272.0"), ("pulumi-openstack", "5.5.3"), ("pulumi-kubernetes", "4.34.2"),
    ("pulumi-command", "1.2.1"),
])
def test_requirements_pin_exact_versions(package, version):
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    pins = dict(line.split("==") for line in lines if "==" in line)
    assert pins.get(package) == version
    assert all("==" in line for line in lines if line), "every requirement is pinned exactly"
    assert "pyyaml" in pins


def test_namespace_constant():
    assert config_mod.NAMESPACE == PROJECT["name"]
