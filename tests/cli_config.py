"""The Pulumi CLI's configuration rules, ported so a test can apply them without the CLI.

Before `pulumi preview` / `up` runs a program, the CLI loads Pulumi.yaml, loads the stack
file, merges the project's defaults into the stack and validates the result. A stack that
fails never reaches the program, so the mock runtime cannot see these failures (review-pulumi
F1). Source: pulumi/pulumi at 1b5949891b (sdk 3.260.0-dev), read for this port:

  P1 sdk/go/common/workspace/project.go (*Project).Validate         Pulumi.yaml load checks
  P2 sdk/go/common/resource/config/object.go unmarshalObject,
     MarshalString; value.go Value.UnmarshalYAML                  stack values become text
  P3 sdk/go/common/workspace/loaders.go stackConfigNamespacedWithProject   `key` -> `proj:key`
  M1 pkg/workspace/config.go mergeConfig (L255-366)                 missing keys, defaults
  M2 pkg/workspace/config.go createConfigValue (L179-193)           a default is PLAINTEXT
  V1 pkg/workspace/config.go validateStackConfigValues (L66-117)    typed keys only, sorted,
                                                                    first failure wins
  V2 pkg/workspace/config.go validateStackConfigValue (L119-154)    secret must be secure,
                                                                    then the type
  V3 sdk/go/common/workspace/project.go ValidateConfigValue (L771-831)  the type rules

`up` and `preview` apply M1-V3 by default; `destroy` and `refresh` only with --run-program.
Bug pulumi/pulumi#21865 (open since 3.202.0) is M2 + V2: a typed `secret: true` key with a
`default` that the stack omits gets a plaintext default, then fails "must be encrypted".
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

TYPES = ("string", "integer", "boolean", "array", "object")


class CliConfigError(Exception):
    """What the CLI prints after `error: validating stack config: ` (or on project load)."""


@dataclass(frozen=True)
class Value:
    """config.Value (P2): every stack value is text; lists and maps are JSON objects."""

    text: str
    secure: bool = False
    object: bool = False


class _YamlV3Loader(yaml.SafeLoader):
    """yaml.v3 decoding into `any`: only true/false are booleans (yes/on stay strings)."""


_YamlV3Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_YamlV3Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _scalar_text(raw: Any) -> str:
    """object.go MarshalString: JSON text of bool/int/float scalars (3.0 -> "3")."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return raw if isinstance(raw, str) else json.dumps(raw)


def _has_secure(raw: Any) -> bool:
    if isinstance(raw, dict):
        return set(raw) == {"secure"} or any(_has_secure(x) for x in raw.values())
    return isinstance(raw, list) and any(_has_secure(x) for x in raw)


def stack_value(raw: Any) -> Value:
    """P2: one value of a stack file, as the CLI stores it."""
    if isinstance(raw, dict) and set(raw) == {"secure"}:
        return Value(str(raw["secure"]), secure=True)
    if isinstance(raw, (dict, list)):
        return Value(json.dumps(raw), secure=_has_secure(raw), object=True)
    return Value("" if raw is None else _scalar_text(raw))


def _namespaced(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"  # P3 and M1 parseConfigKey


def load_stack(text: str, project: str) -> dict[str, Value]:
    data = yaml.load(text, Loader=_YamlV3Loader) or {}
    return {_namespaced(project, k): stack_value(v) for k, v in (data.get("config") or {}).items()}


def validate_config_value(typ: str, items: dict | None, value: Any) -> bool:
    """V3, on a decoded value (strings for scalars, JSON-decoded for objects)."""
    if typ == "string":
        return isinstance(value, str)
    if typ == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value == math.trunc(value)):
            return True
        # Go strconv.Atoi: optional sign, ASCII decimal digits, within int64.
        return (isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]+", value) is not None
                and -2**63 <= int(value) < 2**63)
    if typ == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if typ == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or not items:
        return False
    return all(validate_config_value(items["type"], items.get("items"), x) for x in value)


def _type_name(decl: dict) -> str:
    if decl["type"] == "array":
        return f"array<{_type_name(decl['items'])}>"
    return decl["type"]


def load_project(text: str) -> tuple[str, dict[str, dict]]:
    """P1: the project's name and its config declarations, or the CLI's load error."""
    project = yaml.safe_load(text)
    name, out = project["name"], {}
    for key, decl in (project.get("config") or {}).items():
        if not isinstance(decl, dict):  # shorthand: an untyped default (or value)
            decl = {"default": decl} if ":" not in key or key.startswith(f"{name}:") else {"value": decl}
        own = ":" not in key or key.startswith(f"{name}:")
        if "default" in decl and "value" in decl:
            raise CliConfigError(f"project config '{key}' cannot have both a 'default' and 'value' attribute")
        if own and decl.get("type") == "array" and "items" not in decl:
            raise CliConfigError(f"The configuration key '{key}' declares an array but does not specify "
                                 "the underlying type via the 'items' attribute")
        if own and "type" in decl and "default" in decl and not validate_config_value(
                decl["type"], decl.get("items"), decl["default"]):
            raise CliConfigError(f"The default value specified for configuration key '{key}' is not of "
                                 f"the expected type '{_type_name(decl)}'")
        if not own and "type" in decl:
            raise CliConfigError(f"Configuration key '{key}' is not namespaced by the project and should "
                                 "not define a type")
        out[key] = decl
    return name, out


def merge_and_validate(project_text: str, stack_text: str, stack: str) -> dict[str, Value]:
    """M1-V3: the config the program receives, or CliConfigError with the CLI's message."""
    name, decls = load_project(project_text)
    values = load_stack(stack_text, name)
    missing = []
    for key in sorted(decls):  # M1: sorted keys
        decl, full = decls[key], _namespaced(name, key)
        if full in values:
            continue  # the stack's value wins
        if "default" in decl or "value" in decl:
            raw = decl.get("value", decl.get("default"))
            # M2: primitives become plaintext text; lists/maps/floats JSON objects.
            values[full] = (Value(_scalar_text(raw)) if isinstance(raw, (str, int, bool))
                            else Value(json.dumps(raw), object=True))
        elif full.startswith(f"{name}:"):
            missing.append(key)
    if missing:
        quoted = [f"'{k}'" for k in sorted(missing)]
        listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
        raise CliConfigError(f"Stack '{stack}' is missing configuration value{'s' if len(quoted) > 1 else ''} "
                             f"{listed}")
    for key in sorted(decls):  # V1: typed keys only, first failure wins
        decl = decls[key]
        if "type" not in decl:
            continue
        value = values[_namespaced(name, key)]
        if decl.get("secret") and not value.secure:  # V2, first
            raise CliConfigError(f"Stack '{stack}' with configuration key '{key}' must be encrypted as it's secret")
        if value.secure:
            continue  # V2 type-checks the decrypted text; this port has no decrypter
        decoded = json.loads(value.text) if value.object else value.text
        if not validate_config_value(decl["type"], decl.get("items"), decoded):
            raise CliConfigError(f"Stack '{stack}' with configuration key '{key}' must be of type "
                                 f"'{_type_name(decl)}'")
    return values


def program_config(values: dict[str, Value], namespace: str) -> dict[str, Any]:
    """What a program reads from the merged config: the text of every key in `namespace`
    (secure values as a placeholder: the language host receives them decrypted)."""
    prefix = f"{namespace}:"
    return {k[len(prefix):]: ("<decrypted secret>" if v.secure else v.text)
            for k, v in values.items() if k.startswith(prefix)}
