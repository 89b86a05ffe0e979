"""The katak8s CrossGuard policies: importable, so tests call the validate functions directly.

`__main__.py` only builds the PolicyPack (constructing one starts the analyzer server and
blocks, pulumi-sdk.md §4.7). Props arrive with engine (camelCase) names. During a
preview, values that depend on resources not yet created are unknown and reading one
raises UnknownValueError, which the analyzer reports as "can't run policy during
preview"; the checks below read cheap, always-known fields first so that a clear
verdict is reached without touching unknowns where possible, and only test the
*presence* of a key (iterating the keys never raises) when the value is not needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from katak8s_network_policies import (  # noqa: F401 (re-exported: tests and the pack)
    API_PORT,
    LB_LISTENER,
    SEC_GROUP_RULE,
    SSH_PORT,
    WORLD_OPEN_PORTS,
    validate_lb_listener,
    validate_security_group_rule,
    validate_world_union,
)
from katak8s_props import ReportViolation, _get, _keys
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

# Kata namespaces: the sample namespace (issue #6) plus any namespace carrying this label
# with value "true"; both are configurable per stack in the pack's config.
DEFAULT_KATA_NAMESPACES = ("kata-demo",)
KATA_NAMESPACE_LABEL = "katak8s.io/kata-namespace"
# A workload in a kata namespace that deliberately runs on runc (the runc twin that the
# smoke test compares against) says so, with a reason, in this annotation.
RUNC_EXEMPT_ANNOTATION = "katak8s.io/runc-reason"

COMMANDS = ("command:remote:Command", "command:local:Command")
NAMESPACE = "kubernetes:core/v1:Namespace"
# Workload type -> path from the resource to its PodSpec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": ("spec",),
    "kubernetes:apps/v1:Deployment": ("spec", "template", "spec"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template", "spec"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template", "spec"),
    "kubernetes:batch/v1:Job": ("spec", "template", "spec"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

# What prints credentials: a resource named after them (phases are `<node>-<phase>`, so
# the kubeconfig/join/token phases match) or a command text that reads them out.
_CREDENTIAL_NAME = re.compile(
    r"kubeconfig|admin-?conf|token|join|cert(ificate)?-?key|private-?key|credential|secret", re.I)
_CREDENTIAL_TEXT = re.compile(
    r"\bcat\b[^\n;|&]*(admin\.conf|kubeconfig|\.key\b)|kubeadm\s+token\s+create|print-join-command"
    r"|upload-certs|certificate-key|BEGIN [A-Z ]*PRIVATE KEY", re.I)


# --- Commands that carry credentials must not log ---------------------------------------

_NODE_PREFIX = re.compile(r"^(?P<cluster>.+?)-(?:cp|worker)-\d+-")


def _phase_part(name: str) -> str:
    """A phase name without the cluster name it carries (`<cluster>-<role>-<n>-<phase>`, and
    again in `join-credentials-<node>`): a cluster called `joint-lab` or `tokenizer` must not
    make every command look like a credential handler (review-pulumi F14)."""
    m = _NODE_PREFIX.match(name)
    return name.replace(m.group("cluster"), "") if m else name


def carries_credentials(args: ResourceValidationArgs) -> str | None:
    """Why this command's output or input is sensitive, or None."""
    secret_outputs = set(args.opts.additional_secret_outputs or []) & {"stdout", "stderr"}
    if secret_outputs:
        return f"it declares {' and '.join(sorted(secret_outputs))} secret"
    if "stdin" in _keys(args.props):
        return "it receives stdin, which carries secrets in this project"
    if _CREDENTIAL_NAME.search(_phase_part(args.name)):
        return "its name says it handles credentials"
    for key in ("create", "update"):
        text = _get(args.props, key)  # may be unknown in preview: then the policy can't decide
        if isinstance(text, str) and _CREDENTIAL_TEXT.search(text):
            return f"its {key} command reads credentials"
    return None


def validate_command_logging(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Command output is logged (to the console and the backend) even when the stdout
    output is secret (pulumi-command #260); commands that see credentials need logging none."""
    if args.resource_type not in COMMANDS:
        return
    logging = _get(args.props, "logging") or "stdoutAndStderr"  # the provider's default
    if logging == "none":
        return
    reason = carries_credentials(args)
    if reason:
        report_violation(
            f"command {args.name!r} logs its output (logging={logging!r}) but {reason}; set "
            "logging=Logging.NONE and additional_secret_outputs=['stdout', 'stderr'].")


# --- Kata namespaces: every pod runs in Kata, with limits that size its VM ---------------

def _namespace(props: Mapping[str, Any]) -> str:
    return _get(props, "metadata", "namespace") or "default"


def kata_namespaces(resources: Iterable[Any], config: Mapping[str, Any]) -> set[str]:
    """The configured names plus every Namespace in the stack labeled as a kata namespace."""
    names = set(config.get("kataNamespaces", DEFAULT_KATA_NAMESPACES))
    label = config.get("namespaceLabel", KATA_NAMESPACE_LABEL)
    for r in resources:
        if r.resource_type == NAMESPACE and str(_get(r.props, "metadata", "labels", label)).lower() == "true":
            name = _get(r.props, "metadata", "name")
            if name:
                names.add(name)
    return names


def _workloads(args: StackValidationArgs) -> Iterable[tuple[Any, Mapping[str, Any], bool]]:
    """(resource, PodSpec, runc exemption stated) of each workload in a kata namespace.
    The exemption annotation counts on the workload or on its pod template (where
    `kubectl get pod -o yaml` shows it)."""
    namespaces = kata_namespaces(args.resources, args.get_config())
    for r in args.resources:
        path = POD_SPEC_PATHS.get(r.resource_type)
        if path and _namespace(r.props) in namespaces:
            spec = _get(r.props, *path)
            if isinstance(spec, Mapping):
                exempt = any(_get(r.props, *where, "metadata", "annotations", RUNC_EXEMPT_ANNOTATION)
                             for where in ((), path[:-1]))
                yield r, spec, exempt


def validate_kata_runtime_class(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """A pod template in a kata namespace must set runtimeClassName, or state why not."""
    for r, spec, exempt in _workloads(args):
        if exempt or _get(spec, "runtimeClassName"):
            continue
        report_violation(
            f"{r.resource_type.rsplit(':', 1)[-1]} {r.name!r} in kata namespace {_namespace(r.props)!r} "
            "has no runtimeClassName, so it would run on runc; set it to the stack's runtimeClassNames "
            f"output (or annotate {RUNC_EXEMPT_ANNOTATION} with the reason).", r.urn)


def validate_kata_resource_limits(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Every container in a kata namespace sets cpu and memory limits: without them Kata
    boots each VM with its default 1 vCPU / 2 GiB (upstream-bootstrap.md §6.5)."""
    for r, spec, _ in _workloads(args):
        for kind in ("initContainers", "containers"):
            for container in _get(spec, kind) or []:
                limits = _get(container, "resources", "limits") or {}
                missing = [k for k in ("cpu", "memory") if not _get(limits, k)]
                if missing:
                    report_violation(
                        f"container {_get(container, 'name')!r} of {r.name!r} in kata namespace "
                        f"{_namespace(r.props)!r} has no {' or '.join(missing)} limit; Kata sizes the "
                        "pod's VM from its limits, so set both.", r.urn)


_NAMESPACE_CONFIG = PolicyConfigSchema(properties={
    "kataNamespaces": {"type": "array", "items": {"type": "string"},
                       "default": list(DEFAULT_KATA_NAMESPACES)},
    "namespaceLabel": {"type": "string", "default": KATA_NAMESPACE_LABEL},
})

POLICIES = [
    ResourceValidationPolicy(
        name="no-world-open-ports",
        description="Only SSH (22) and the Kubernetes API (6443) may be open to 0.0.0.0/0.",
        validate=[validate_security_group_rule, validate_lb_listener],
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    StackValidationPolicy(
        name="no-world-open-ports-by-union",
        description="No set of ingress rules for one group and port adds up to 0.0.0.0/0, but SSH and the API.",
        validate=validate_world_union,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    ResourceValidationPolicy(
        name="credential-commands-log-nothing",
        description="Commands that print or receive credentials run with logging none.",
        validate=validate_command_logging,
        enforcement_level=EnforcementLevel.MANDATORY,
    ),
    StackValidationPolicy(
        name="kata-namespace-runtime-class",
        description="Pod templates in kata namespaces set runtimeClassName.",
        validate=validate_kata_runtime_class,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_NAMESPACE_CONFIG,
    ),
    StackValidationPolicy(
        name="kata-namespace-resource-limits",
        description="Containers in kata namespaces set cpu and memory limits.",
        validate=validate_kata_resource_limits,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=_NAMESPACE_CONFIG,
    ),
]
