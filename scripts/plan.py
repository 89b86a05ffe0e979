#!/usr/bin/env python3
"""Offline plan: what a stack would create and run, without the Pulumi CLI or a cloud.

    venv/bin/python scripts/plan.py --stack dev [--out plan/dev]

Evaluates __main__.py under Pulumi's mock runtime (tests/harness.py, the same code the
tests use) with the katak8s: config of Pulumi.<stack>.yaml, and writes:

    resources.txt                  every resource: type, name, parent (sorted)
    inputs/<type>/<name>.json      every resource's inputs; secrets shown as {"(secret)": ...}
    nodes/<node>/<phase>.sh        the exact bundle each node phase runs
    cloud-init/<node>.yaml         every server's user data
    kubeadm/<node>-<phase>-<n>.yaml every kubeadm config a phase carries
    kubeadm/<command>.yaml         a kubeadm config sent on a command's stdin (joins: secret,
                                   shown with the mocks' placeholder token)
    kubernetes/<kind>/<ns>.<name>.yaml  every Kubernetes object (Helm releases: their inputs)
    outputs.json                   the stack outputs (secrets redacted)
    graph.json                     every registration and the plain outputs, for the engine
                                   model (scripts/operations.py --before-plan)

Values that exist only after deployment are placeholders such as `<floating IP of X>`.
The output is deterministic: two runs give byte-identical files (tested), so
`diff -r plan/base plan/head` (or scripts/plan_diff.py) is a readable plan review.
Secret config (sshPrivateKey) is never read from the stack file: the plan uses a placeholder.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from engine_model import topological  # noqa: E402
from harness import SECRET_SIG, Export, Graph, Registration, run_program  # noqa: E402

from components.config import SECRET_KEYS, ConfigError  # noqa: E402
from components.nodes import bootstrap, phase, steps  # noqa: E402

SECRET_PLACEHOLDER = "<secret from the stack configuration>"


def stack_config(stack: str, path: Path | None = None) -> dict[str, Any]:
    """The katak8s: keys of Pulumi.<stack>.yaml; secure values become placeholders."""
    path = path or ROOT / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise SystemExit(f"plan: {path.name} not found; create it (see Pulumi.dev.yaml) or pass --stack")
    data = yaml.safe_load(path.read_text()) or {}
    out = {}
    for key, value in (data.get("config") or {}).items():
        if not key.startswith("katak8s:"):
            continue
        if isinstance(value, dict) and "secure" in value or (key.split(":", 1)[1] in SECRET_KEYS and value):
            value = SECRET_PLACEHOLDER  # a secret never enters the plan, encrypted or not
        out[key.split(":", 1)[1]] = value
    return out


def with_overrides(config: dict[str, Any], items: list[str]) -> dict[str, Any]:
    """`config` with each KEY=VALUE of --set applied (JSON values allowed). A secret key's
    value, from --set or a plaintext stack value, never enters the plan: a placeholder does."""
    out = dict(config)
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return {k: SECRET_PLACEHOLDER if k in SECRET_KEYS and v else v for k, v in out.items()}


def _show(value: Any) -> Any:
    """Inputs for humans: secret markers become {"(secret)": value}."""
    if isinstance(value, dict):
        if SECRET_SIG in value and "value" in value:
            return {"(secret)": _show(value["value"])}
        return {k: _show(v) for k, v in sorted(value.items()) if k != SECRET_SIG}
    if isinstance(value, list):
        return [_show(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        if SECRET_SIG in value and "value" in value:
            return _plain(value["value"])
        return {k: _plain(v) for k, v in value.items() if k != SECRET_SIG}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text.endswith("\n") else text + "\n")


def _bundle_params(program: str) -> dict[str, str]:
    """The KEY='value' lines of a phase program's parameter section."""
    section = program.split("# --- parameters ---\n", 1)[-1].split("\n# --- scripts/", 1)[0]
    return _assignments(section)


def _phase_params(program: str) -> dict[str, str]:
    """The KATAK8S_* lines above a program's parameters."""
    return _assignments(program.split("# --- parameters ---\n", 1)[0])


def _assignments(section: str) -> dict[str, str]:
    params = {}
    for token in shlex.split(section, comments=True):
        if "=" in token:
            key, value = token.split("=", 1)
            params[key] = value
    return params


def write_plan(graph: Graph, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    names = {r.urn: r.name for r in graph}
    rows = sorted(f"{r.type}  {r.name}  (parent: {names.get(r.parent, '-')})" for r in graph)
    _write(out / "resources.txt", "\n".join(rows))
    for reg in graph:
        _write(out / "inputs" / _safe(reg.type) / f"{_safe(reg.name)}.json",
               json.dumps(_show(reg.inputs), indent=2, sort_keys=True))
        _write_artifacts(reg, out)
    exports = {k: ("[secret]" if e.secret else _plain(e.value)) for k, e in sorted(graph.exports.items())}
    _write(out / "outputs.json", json.dumps(exports, indent=2, sort_keys=True, default=str))


def _write_artifacts(reg: Registration, out: Path) -> None:
    if reg.type == "command:remote:Command":
        # The program each command runs (components/nodes/phase.py render_program): its
        # parameters and the sums of the scripts it sources from the node's copy.
        command_program = phase.program_of(_plain(reg.inputs.get("create")))
        if command_program:
            # A command of several phases (components/nodes/steps.py) shows each phase apart.
            several = steps.parse(command_program)
            for program in [p for _, p in several or []] or [command_program]:
                phase_name = _phase_params(program).get("KATAK8S_PHASE", reg.name)
                node = reg.name.removesuffix(f"-{bootstrap.BOOTSTRAP}") if several \
                    else reg.name.removesuffix(f"-{phase_name}")
                _write(out / "nodes" / _safe(node) / f"{_safe(phase_name)}.sh", program)
                n = 0
                for value in _bundle_params(program).values():
                    if "apiVersion: kubeadm.k8s.io/" in value:
                        _write(out / "kubeadm" / f"{_safe(node)}-{_safe(phase_name)}-{n}.yaml", value)
                        n += 1
        # kubeadm configs reach the nodes on stdin: init's holds addresses known only after
        # deployment, a join's also the minted token. Under mocks every secret in them is a
        # placeholder (the token is kubeadm's documented example), so the plan shows them.
        stdin = reg.inputs.get("stdin")
        text = _plain(stdin)
        if isinstance(text, str) and "apiVersion: kubeadm.k8s.io/" in text:
            header = ("# Secret on the wire (Pulumi secret, stdin, logging off). The token, CA hash and\n"
                      "# certificate key below are mock placeholders.\n") if isinstance(stdin, dict) else ""
            _write(out / "kubeadm" / f"{_safe(reg.name)}.yaml", header + text)
    elif reg.type == "openstack:compute/instance:Instance":
        user_data = _plain(reg.inputs.get("userData"))
        if user_data:
            _write(out / "cloud-init" / f"{_safe(reg.name)}.yaml", user_data)
    elif reg.type.startswith("kubernetes:") and not reg.type.startswith("kubernetes:helm"):
        group_version, kind = reg.type.split(":", 1)[1].split(":")
        api_version = group_version.removeprefix("core/")
        manifest = {"apiVersion": api_version, "kind": kind, **_plain(reg.inputs)}
        meta = manifest.get("metadata") or {}
        ns = meta.get("namespace", "_cluster")
        _write(out / "kubernetes" / kind / f"{_safe(ns)}.{_safe(meta.get('name', reg.name))}.yaml",
               yaml.safe_dump(manifest, sort_keys=True))
    elif reg.type.startswith("kubernetes:helm"):
        _write(out / "kubernetes" / "HelmRelease" / f"{_safe(reg.name)}.yaml",
               yaml.safe_dump(_plain(reg.inputs), sort_keys=True))


GRAPH_FILE = "graph.json"


def save_graph(graph: Graph, out: Path) -> None:
    """The graph and its plain outputs (secret outputs omitted), for a later --before-plan."""
    def row(reg: Registration) -> dict[str, Any]:  # dependency lists sorted: they arrive in any order
        return {**reg.__dict__, "outputs": {}, "dependencies": sorted(reg.dependencies),
                "property_dependencies": {k: sorted(v) for k, v in reg.property_dependencies.items()}}

    data = {"registrations": [row(reg) for reg in topological(list(graph))],
            "exports": {k: e.value for k, e in sorted(graph.exports.items()) if not e.secret and e.known}}
    _write(out / GRAPH_FILE, json.dumps(data, sort_keys=True, indent=1, default=str))


def load_graph(plan_dir: Path) -> Graph | None:
    """What save_graph wrote; None for a plan without one (an older base branch)."""
    path = plan_dir / GRAPH_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    exports = {k: Export(v, False, True) for k, v in data["exports"].items()}
    return Graph([Registration(**row) for row in data["registrations"]], [], exports)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to read")
    parser.add_argument("--out", type=Path, help="output directory (default: plan/<stack>)")
    parser.add_argument("--stack-file", type=Path, help="the stack file to read (default: Pulumi.<stack>.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a katak8s: key (JSON values allowed), e.g. --set workerCount=5")
    args = parser.parse_args(argv)
    config = with_overrides(stack_config(args.stack, args.stack_file), args.set)
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        graph = run_program(config, stack=args.stack, base=False)
    except ConfigError as err:
        print(f"plan: {err}", file=sys.stderr)
        return 2
    out = args.out or ROOT / "plan" / args.stack
    write_plan(graph, out)
    save_graph(graph, out)
    print(f"plan: {len(graph)} resources for stack {args.stack} written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
