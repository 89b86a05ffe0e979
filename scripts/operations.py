#!/usr/bin/env python3
"""Operation plan: which node-level scripts `pulumi up` would run, in which order, per node.

    venv/bin/python scripts/operations.py --stack dev --set workerCount=1     # dev -> dev with a change
    venv/bin/python scripts/operations.py --stack dev --fresh                  # a first `pulumi up`
    venv/bin/python scripts/operations.py --stack dev --destroy                # `pulumi destroy`
    venv/bin/python scripts/operations.py --stack dev --before-plan plan/base  # this checkout vs a plan dir

It evaluates the program under Pulumi's mock runtime (tests/harness.py) before and after the
change and runs the engine model (tests/engine_model.py, every rule cited there) over the two
graphs; `--before-plan` takes the "before" graph from a scripts/plan.py directory (the base
branch in the plan-review workflow) and the "after" one from this checkout. A line
such as `dev-worker-2: drain (on dev-cp-0), then kubeadm reset, then delete the Node (on
dev-cp-0); server deleted` is what a reviewer checks before merging. A change the program
refuses (components/deployed.py) prints the refusal instead. `--replace NAME` models
`pulumi up --replace` of that resource.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "scripts")]

from engine_model import Step, simulate  # noqa: E402
from harness import Graph, Registration, run_program  # noqa: E402
from plan import load_graph, stack_config, with_overrides  # noqa: E402
from provider_rules import DISRUPTIVE_UPDATES  # noqa: E402

from components.config import ConfigError  # noqa: E402
from components.nodes import phase, steps  # noqa: E402

# What each script does, in a reviewer's words (scripts/remote/node, scripts/remote/cluster).
VERBS = {
    "node/00-preflight.sh": "preflight", "node/10-kernel.sh": "kernel", "node/20-containerd.sh": "runtime",
    "node/20-crio.sh": "runtime", "node/30-kata.sh": "kata", "node/40-kube-packages.sh": "kube packages",
    "cluster/init.sh": "kubeadm init", "cluster/kubeconfig.sh": "read the kubeconfig",
    "cluster/join-credentials.sh": "mint join credentials", "cluster/join.sh": "kubeadm join",
    "cluster/member.sh": "wait until registered", "cluster/drain.sh": "drain", "cluster/reset.sh": "kubeadm reset",
    "cluster/delete-node.sh": "delete the Node",
}
# A script whose delete does something else than its create (the same file, MODE=release).
DELETE_VERBS = {
    "cluster/cloud-cleanup.sh": "delete every LoadBalancer Service and wait for its load balancer to go",
}
VERBS["cluster/cloud-cleanup.sh"] = "arm the destroy guard of LoadBalancer Services"
# What a re-run does when it carries a new Kubernetes version: the upgrade, node by node
# (components/cluster/upgrade.py).
UPGRADE_VERBS = {
    "cluster/init.sh": "upgrade to {v}: kubeadm upgrade apply, drain, runtime and kubelet, uncordon",
    "cluster/join-credentials.sh": "drain for the upgrade to {v}",
    "cluster/join.sh": "upgrade to {v}: kubeadm upgrade node, runtime and kubelet",
    "cluster/member.sh": "uncordon once it runs {v}",
    "node/40-kube-packages.sh": "kube packages (re-run: a joined node keeps its version for the upgrade steps)",
}
INSTANCE = "openstack:compute/instance:Instance"
_VERSION = re.compile(r"^KUBERNETES_VERSION='?v?([0-9.]+)'?$", re.M)


_FROM = re.compile(r"^# katak8s phase \S+: (?:runs )?scripts/remote/(\S+?\.sh)", re.M)


def script_of(program_or_command: str | None) -> str | None:
    """The script under scripts/remote a program (or a command line around one) runs."""
    text = program_or_command or ""
    m = _FROM.search(phase.program_of(text) or text) if text.startswith("sudo ") else _FROM.search(text)
    return m.group(1) if m else None


def node_names(*graphs: Graph | None) -> list[str]:
    names = {r.plain("name") for g in graphs if g is not None
             for r in g.of_type("openstack:compute/instance:Instance")}
    return sorted(names, key=len, reverse=True)  # longest first: dev-worker-10 before dev-worker-1


def locate(name: str, nodes: list[str]) -> tuple[str, str, str]:
    """(runs on, about which node, phase) of a phase resource named `<node>-<phase>`."""
    host = next((n for n in nodes if name.startswith(n + "-")), "")
    phase = name[len(host) + 1:] if host else name
    for prefix in ("join-credentials-", "membership-"):
        if phase.startswith(prefix) and phase[len(prefix):] in nodes:
            return host, phase[len(prefix):], prefix.rstrip("-")
    return host, host, phase


def _bundle(reg: Registration, graph: Graph | None) -> str | None:
    """The program the command `reg` runs in `graph` (components/nodes/phase.py render_program)."""
    if graph is None:
        return None
    cmd = next((r for r in graph if r.name == reg.name and r.type == reg.type), None)
    return phase.program_of(cmd.plain("create")) if cmd else None


def deployed_version(before: Graph | None) -> str | None:
    """The Kubernetes version the stack's last completed `up` recorded (components/outputs.py)."""
    export = before.exports.get("kubernetesVersion") if before is not None else None
    value = getattr(export, "value", export)
    return value if isinstance(value, str) else None


def _runs(step: Step, before: Graph | None, after: Graph | None) -> list[tuple[str | None, str | None]]:
    """(the script, the Kubernetes version it moves a node to, or None) of each phase a step
    runs. A command of several phases runs, on an update or a replacement, only the phases
    whose program changed: the others are skipped on the node (scripts/remote/steps.sh). A
    re-run that carries another version than the last completed `up` recorded is an upgrade
    step, also when it resumes an upgrade that stopped half-way."""
    reg = step.reg
    if step.op == "delete":
        return [((script_of(reg.plain("delete")) if reg.plain("delete") else None), None)]
    new, old = _bundle(reg, after) or _bundle(reg, before), _bundle(reg, before)
    new_steps = steps.parse(new)
    if new_steps is None:
        return [_hop(step, new, old, before)]
    old_steps = dict(steps.parse(old) or []) if step.op != "create" else {}
    return [_hop(step, program, old_steps.get(name), before) for name, program in new_steps
            if step.op == "create" or old_steps.get(name) != program]


def _hop(step: Step, new: str | None, old: str | None, before: Graph | None) -> tuple[str | None, str | None]:
    want = _VERSION.search(new or "")
    had = deployed_version(before)
    if had is None and step.op != "create":
        m = _VERSION.search(old or "")
        had = m.group(1) if m else None
    hop = want.group(1) if want and had and step.op != "create" and want.group(1) != had else None
    return script_of(new), hop


def node_actions(steps: list[Step], before: Graph | None, after: Graph | None) -> OrderedDict[str, list[str]]:
    """Per node (in order of first appearance), what happens to it, in order."""
    nodes = node_names(before, after)
    out: OrderedDict[str, list[str]] = OrderedDict()
    for step in steps:
        reg = step.reg
        if reg.type == INSTANCE:
            node = reg.plain("name")
            if step.op == "update":
                text = "; ".join(DISRUPTIVE_UPDATES[k] for k in step.keys if k in DISRUPTIVE_UPDATES)
                text = f"server {text}" if text else "server updated in place (" + ", ".join(step.keys) + ")"
            elif step.op == "replace":
                text = "new server created" + (f" (replaced: {', '.join(step.keys)})" if step.keys else "")
            else:
                text = {"create": "server created", "delete": "server deleted"}[step.op]
            out.setdefault(node, []).append(text)
            continue
        if reg.type != "command:remote:Command":
            continue
        host, node, _phase = locate(reg.name, nodes)
        for script, hop in _runs(step, before, after):
            _describe(out, step, script, hop, host, node)
    return out


def _describe(out: OrderedDict[str, list[str]], step: Step, script: str | None, hop: str | None,
              host: str, node: str) -> None:
    """Append what one phase of `step` does to `node`'s line."""
    reg = step.reg
    if step.op == "delete" and script is None:
        return  # nothing runs (C2)
    verb = VERBS.get(script or "", script or reg.name)
    if step.op == "delete":
        verb = DELETE_VERBS.get(script or "", verb)
    where = f" (on {host})" if host != node else ""
    if step.op == "delete":
        text = (f"{verb} skipped{where} (deleted with {reg.deleted_with.rsplit('::', 1)[-1]})"
                if step.skipped else f"{verb}{where}")
    elif hop and script in UPGRADE_VERBS:
        text = UPGRADE_VERBS[script].format(v=hop) + where
    else:
        # An update re-runs `create` (C2); so does a replacement, whose old copy's delete
        # runs nothing for the phases without a delete script.
        text = f"{verb}{where}" + (" (re-run)" if step.op in ("update", "replace") else "")
    out.setdefault(node, []).append(text)


def upgrade_order(actions: dict[str, list[str]], after: Graph | None) -> list[list[str]]:
    """The nodes an upgrade moves, in turns: each turn waits for every node of the turn
    before it (the graph's edges, components/cluster/upgrade.py)."""
    if after is None:
        return []
    upgraded = [n for n, items in actions.items() if any(i.startswith("upgrade to") for i in items)]
    steps = {n: next((r for r in after.of_type("command:remote:Command")
                      if r.name in (f"{n}-kubeadm-join", f"{n}-kubeadm-init")), None) for n in upgraded}
    depth = {n: sum(after.depends_on(steps[n], steps[m]) for m in upgraded if m != n and steps[m])
             for n in upgraded if steps[n]}
    return [sorted(n for n in depth if depth[n] == d) for d in sorted(set(depth.values()))]


def render(steps: list[Step], before: Graph | None, after: Graph | None) -> str:
    actions = node_actions(steps, before, after)
    nodes = set(node_names(before, after))
    if not actions:
        lines = ["No node-level step runs: no script, no server change."]
    else:
        lines = [f"{node}: " + ", then ".join(items) for node, items in actions.items()]
        untouched = sorted(n for n in nodes - set(actions) if not n.endswith("-jump-host"))  # no member
        if untouched:
            lines.append(f"Untouched: {', '.join(untouched)}.")
        turns = upgrade_order(actions, after)
        if turns:
            lines.append("Upgrade order, each turn after the one before: "
                         + ", then ".join(" + ".join(t) for t in turns) + ".")
    counts: dict[str, int] = {}
    for s in steps:
        counts[s.op] = counts.get(s.op, 0) + 1
    summary = ", ".join(f"{n} {op}" for op, n in sorted(counts.items())) or "no steps"
    return "\n".join([*lines, f"Resources: {summary}."])


def operation(before: Graph | None, config: dict | None, stack: str, replace: tuple[str, ...] = ()) -> str:
    """The rendered operation plan from `before` to the program evaluated with `config`
    (None: destroy). Raises ConfigError when the program refuses the change."""
    warnings.simplefilter("ignore", DeprecationWarning)

    def evaluate(fresh: frozenset[str]) -> Graph | None:
        if config is None:
            return None
        return run_program(config, stack=stack, base=False, deployed=before, fresh=fresh)

    steps, after = simulate(before, evaluate, replace=replace)
    return render(steps, before, after)


# The examples docs/operations.md shows, generated from the dev stack (tests keep them current).
DOC_BEGIN, DOC_END = "<!-- operations:begin (scripts/operations.py --write-docs) -->", "<!-- operations:end -->"
EXAMPLES: tuple[tuple[str, str, dict | None, tuple[str, ...]], ...] = (
    ("The first `pulumi up`", "--fresh", {}, ()),
    ("A re-run with nothing changed", "", {}, ()),
    ("Scale out", "--set workerCount=3", {"workerCount": 3}, ()),
    ("Scale in", "--set workerCount=1", {"workerCount": 1}, ()),
    ("Replace a worker's server", "--replace dev-worker-1", {}, ("dev-worker-1",)),
    ("A new worker flavor", "--set workerFlavor=m2.xlarge", {"workerFlavor": "m2.xlarge"}, ()),
    ("Roll one worker onto the new flavor", "--set workerFlavor=m2.xlarge --replace dev-worker-1",
     {"workerFlavor": "m2.xlarge"}, ("dev-worker-1",)),
    ("A new Kata tarball (kataVersion or kataSha256)", "--set kataSha256=<sha256>", {"kataSha256": "0" * 64}, ()),
    ("The next Kubernetes minor: an in-place upgrade, node by node",
     "--set kubernetesVersion=1.37", {"kubernetesVersion": "1.37"}, ()),
    ("A Kubernetes downgrade (refused at preview)", "--set kubernetesVersion=1.35", {"kubernetesVersion": "1.35"}, ()),
    ("Another container runtime (refused at preview)", "--set containerRuntime=crio", {"containerRuntime": "crio"},
     ()),
    ("1 -> 3 control planes", "--set controlPlaneCount=3", {"controlPlaneCount": 3}, ()),
    ("A new SSH key", "--set sshPrivateKey=<another key>",
     {"sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\nanother\n-----END OPENSSH PRIVATE KEY-----"}, ()),
    ("`pulumi destroy`", "--destroy", None, ()),
)


def examples_markdown(stack: str = "dev") -> str:
    """Every EXAMPLES entry with this tool's real output for the `stack` stack file."""
    config = stack_config(stack)
    deployed = run_program(config, stack=stack, base=False)
    parts = []
    for title, flags, change, replace in EXAMPLES:
        before = None if flags == "--fresh" else deployed
        try:
            text = operation(before, None if change is None else {**config, **change}, stack, replace)
        except ConfigError as err:
            text = f"Refused before any resource changes:\n{err}"
        command = f"venv/bin/python scripts/operations.py --stack {stack} {flags}".rstrip()
        parts.append(f"#### {title}\n\n```console\n$ {command}\n{text}\n```\n")
    return "\n".join(parts)


def write_docs(path: Path) -> bool:
    """Rewrite the generated block of `path`; True when it changed."""
    text = path.read_text()
    head, rest = text.split(DOC_BEGIN, 1)
    _, tail = rest.split(DOC_END, 1)
    new = f"{head}{DOC_BEGIN}\n\n{examples_markdown()}\n{DOC_END}{tail}"
    path.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before-plan", type=Path, metavar="DIR",
                        help="the deployed state: a scripts/plan.py directory (default: the stack file)")
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="the change to model")
    parser.add_argument("--fresh", action="store_true", help="model the first `pulumi up` of the stack")
    parser.add_argument("--destroy", action="store_true", help="model `pulumi destroy`")
    parser.add_argument("--replace", action="append", default=[], metavar="NAME",
                        help="model `pulumi up --replace` of the resource with this name")
    parser.add_argument("--write-docs", action="store_true",
                        help="regenerate the examples in docs/operations.md from the dev stack")
    args = parser.parse_args(argv)
    if args.write_docs:
        changed = write_docs(ROOT / "docs" / "operations.md")
        print("docs/operations.md " + ("updated" if changed else "already current"))
        return 0
    config = stack_config(args.stack)
    changed = with_overrides(config, args.set)
    try:
        if args.before_plan is not None:
            before = load_graph(args.before_plan)
            if before is None:
                parser.error(f"{args.before_plan} has no graph.json (render it with scripts/plan.py)")
        else:
            before = None if args.fresh else run_program(config, stack=args.stack, base=False)
        print(operation(before, None if args.destroy else changed, args.stack, tuple(args.replace)))
    except ConfigError as err:
        print(f"Refused before any resource changes:\n{err}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
