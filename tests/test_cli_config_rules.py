"""The Pulumi CLI's config rules (tests/cli_config.py) applied to every project and stack
file in the repository, and to the stack a newcomer writes. Mocks never read Pulumi.yaml:
without these tests the CLI could refuse every stack before the program runs (F1)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_config import CliConfigError, Value, load_project, merge_and_validate, program_config, stack_value

from components.config import parse_config

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = [ROOT / "Pulumi.yaml", *sorted((ROOT / "examples").glob("*/Pulumi.yaml"))]
# A stand-in value for every type, as a newcomer writes it in Pulumi.<stack>.yaml.
SAMPLE = {"string": "m1.large", "integer": 3, "boolean": True, "array": ["203.0.113.0/24"]}


def _stacks(project: Path) -> list[Path]:
    return sorted(project.parent.glob("Pulumi.*.yaml"))


def _required_only(project: Path) -> str:
    """The smallest stack a newcomer writes: every key without a default, nothing else."""
    _, decls = load_project(project.read_text())
    return yaml.safe_dump({"config": {k: SAMPLE[d["type"]] for k, d in decls.items()
                                      if "default" not in d and "value" not in d}})


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_project_file_loads(project):
    load_project(project.read_text())


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_stack_with_only_the_required_keys_passes_the_cli(project):
    """The README quick start and both workflows with the key unset (F1, pulumi/pulumi#21865)."""
    merge_and_validate(project.read_text(), _required_only(project), "newcomer")


@pytest.mark.parametrize("stack", [s for p in PROJECTS for s in _stacks(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_stack_file_in_the_repository_passes_the_cli(stack):
    merge_and_validate((stack.parent / "Pulumi.yaml").read_text(), stack.read_text(), stack.stem.split(".", 1)[1])


@pytest.mark.parametrize("stack_text", [
    None,  # the newcomer's stack
    (ROOT / "Pulumi.dev.yaml").read_text(),
    (ROOT / "Pulumi.dev.yaml").read_text() + "  katak8s:sshPrivateKey:\n    secure: v1:AAAA\n",
])
def test_the_program_accepts_what_the_cli_hands_it(stack_text):
    """End to end: CLI merge -> the text the program receives -> components.config."""
    text = stack_text if stack_text is not None else _required_only(ROOT / "Pulumi.yaml")
    values = merge_and_validate((ROOT / "Pulumi.yaml").read_text(), text, "dev")
    cfg = parse_config(program_config(values, "katak8s"), stack="dev")
    assert cfg.cluster_name == "dev"


def test_no_key_is_both_secret_and_defaulted():
    """The shape of F1: the CLI writes the default as plaintext, then refuses it."""
    for project in PROJECTS:
        _, decls = load_project(project.read_text())
        bad = [k for k, d in decls.items() if d.get("secret") and d.get("type") and "default" in d]
        assert not bad, f"{project.relative_to(ROOT)}: {bad} would fail every stack that leaves them unset"


# --- the port bites: each rule, on a small project --------------------------------------------

PROJECT = """name: p
runtime: python
config:
  count: {type: integer, default: 1}
  flag: {type: boolean, default: false}
  cidrs: {type: array, items: {type: string}}
  token: {type: string, secret: true}
"""


def _merge(stack: dict, project: str = PROJECT):
    return merge_and_validate(project, yaml.safe_dump({"config": stack}), "s")


def test_the_upstream_bug_21865_is_reproduced():
    project = "name: p\nruntime: python\nconfig:\n  key: {type: string, secret: true, default: ''}\n"
    message = "^Stack 's' with configuration key 'key' must be encrypted as it's secret$"
    with pytest.raises(CliConfigError, match=message):
        _merge({}, project)


def test_missing_required_keys_are_listed_sorted_before_any_type_check():
    with pytest.raises(CliConfigError, match="^Stack 's' is missing configuration values 'cidrs' and 'token'$"):
        _merge({"p:count": "x"})


def test_a_plaintext_secret_is_refused():
    with pytest.raises(CliConfigError, match="key 'token' must be encrypted"):
        _merge({"cidrs": [], "token": "plain"})


@pytest.mark.parametrize("value,ok", [(3, True), ("007", True), ("+3", True), (3.0, True), ("3.5", False),
                                      ("", False), ("three", False), (True, False)])
def test_integer_rule(value, ok):
    stack = {"cidrs": [], "token": {"secure": "v1:x"}, "count": value}
    if ok:
        _merge(stack)
    else:
        with pytest.raises(CliConfigError, match="key 'count' must be of type 'integer'"):
            _merge(stack)


@pytest.mark.parametrize("value,ok", [(True, True), ("false", True), ("TRUE", True), ("yes", False),
                                      ('"True"', False), (1, False)])
def test_boolean_rule_reads_yaml_like_yaml_v3(value, ok):
    text = yaml.safe_dump({"config": {"cidrs": [], "token": {"secure": "v1:x"}}}) + f"  flag: {value}\n"
    if ok:
        merge_and_validate(PROJECT, text, "s")
    else:
        with pytest.raises(CliConfigError, match="key 'flag' must be of type 'boolean'"):
            merge_and_validate(PROJECT, text, "s")


def test_array_items_are_checked_and_a_scalar_is_not_an_array():
    with pytest.raises(CliConfigError, match="key 'cidrs' must be of type 'array<string>'"):
        _merge({"cidrs": [1], "token": {"secure": "v1:x"}})
    with pytest.raises(CliConfigError, match="key 'cidrs' must be of type 'array<string>'"):
        _merge({"cidrs": "10.0.0.0/8", "token": {"secure": "v1:x"}})


def test_defaults_are_merged_as_plaintext_text():
    values = _merge({"cidrs": ["a"], "token": {"secure": "v1:x"}})
    assert values["p:count"] == Value("1") and values["p:flag"] == Value("false")
    assert values["p:cidrs"] == Value('["a"]', object=True) and values["p:token"].secure


@pytest.mark.parametrize("decl,message", [
    ("{type: array}", "declares an array but does not specify the underlying type"),
    ("{type: integer, default: two}",
     "default value specified for configuration key 'k' is not of the expected type 'integer'"),
    ("{default: 1, value: 2}", "cannot have both a 'default' and 'value' attribute"),
])
def test_project_load_rules(decl, message):
    with pytest.raises(CliConfigError, match=message):
        load_project(f"name: p\nruntime: python\nconfig:\n  k: {decl}\n")


def test_stack_values_become_text_as_the_cli_stores_them():
    assert stack_value(3) == Value("3") and stack_value(True) == Value("true") and stack_value(3.0) == Value("3")
    assert stack_value({"secure": "v1:abc"}) == Value("v1:abc", secure=True)
    assert stack_value(["a"]) == Value('["a"]', object=True)
