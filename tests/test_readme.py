"""The README is the front door: its config table and test command must stay true."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from components.config import SECRET_KEYS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())


def _section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _config_rows() -> dict[str, list[str]]:
    rows = {}
    for line in _section("Configuration").splitlines():
        m = re.match(r"^\| `(\w+)` \|(.*)\|\s*$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return rows


def test_config_table_matches_pulumi_yaml():
    rows = _config_rows()
    assert list(rows) == list(PROJECT["config"]), "README table keys/order differ from Pulumi.yaml"
    for key, decl in PROJECT["config"].items():
        type_, default, description = rows[key]
        assert type_.startswith("list of strings" if decl["type"] == "array" else decl["type"]), key
        # Secret keys: components/config.py refuses them in plaintext (Pulumi.yaml can't
        # declare `secret: true` beside a default, pulumi/pulumi#21865).
        assert ("(secret)" in type_) == (key in SECRET_KEYS), key
        if "default" not in decl:
            assert default == "**required**", key
        else:
            value = decl["default"]
            shown = '""' if value == "" else json.dumps(value) if isinstance(value, list) else (
                str(value).lower() if isinstance(value, bool) else str(value))
            assert default == f"`{shown}`", (key, default, shown)
        assert description == decl["description"], key


def test_ci_runs_the_readmes_test_command():
    commands = re.findall(r"```bash\n(\./scripts/test\.sh)\n```", README)
    assert commands == ["./scripts/test.sh"], "README must name exactly one test command"
    ci = [line for line in (ROOT / ".ci/run").read_text().splitlines() if line and not line.startswith("#")]
    assert commands[0] in ci, ".ci/run must call the README's test command"


def test_readme_deploy_command_and_prerequisites():
    assert "pulumi up --stack dev" in README
    for prerequisite in ("Pulumi CLI", "clouds.yaml", "OS_CLOUD", "Pulumi.dev.yaml"):
        assert prerequisite in README, prerequisite


def test_every_local_link_resolves():
    broken = [link for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
              if not link.startswith("http") and not (ROOT / link).exists()]
    assert broken == []
