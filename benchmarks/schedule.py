"""The engine's bounded parallelism and the SSH sessions of one `pulumi up`, over the real
dependency graph (issue #15). Pure: a graph and a duration per resource in, figures out.

    run = simulate(graph, edges, seconds, parallel=8)     # run.makespan_s, run.peak_ssh
    ssh = ssh_sessions(graph)                             # through/to the jump host
    state_bytes(graph)                                    # registered inputs, JSON

The engine runs at most P steps at once: a fixed pool of P workers pulling step chains off
one channel (pulumi/pulumi pkg/resource/deploy/step_executor.go newStepExecutor: "launch a
worker goroutine for each degree of parallelism", worker() reads se.incomingChains), with
P = 4 x GOMAXPROCS unless --parallel or PULUMI_PARALLEL says otherwise
(pkg/cmd/pulumi/operations/up.go defaultParallel). A resource is registered, and its step
queued, once everything it waits for is done; a remote Command holds its worker for its
whole remote run. So: list scheduling, first ready first served, ties in registration order.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable
from dataclasses import dataclass

SSH_TYPES = ("command:remote:Command", "command:remote:CopyToRemote")


@dataclass(frozen=True)
class Run:
    makespan_s: int  # the last step done: the whole `up`
    peak_ssh: int  # SSH steps running at once, at most
    ssh_steps: int


def simulate(graph, edges: dict[str, set[str]], seconds: Callable[[object], int], parallel: int) -> Run:
    """One fresh `pulumi up` of `graph` with `parallel` workers."""
    regs = [r for r in graph if r.custom]
    index = {r.urn: i for i, r in enumerate(regs)}
    waits = {r.urn: {d for d in edges.get(r.urn, ()) if d in index} for r in regs}
    dependents: dict[str, list[str]] = {}
    for urn, deps in waits.items():
        for d in deps:
            dependents.setdefault(d, []).append(urn)
    left = {urn: len(deps) for urn, deps in waits.items()}
    ready = [(0, index[u], u) for u, n in left.items() if n == 0]
    heapq.heapify(ready)
    running: list[tuple[int, int, str]] = []
    now = ssh_now = peak = 0
    ssh = {r.urn for r in regs if r.type in SSH_TYPES}
    while ready or running:
        while ready and len(running) < parallel and ready[0][0] <= now:
            _, i, urn = heapq.heappop(ready)
            heapq.heappush(running, (now + seconds(graph.by_urn[urn]), i, urn))
            if urn in ssh:
                ssh_now += 1
                peak = max(peak, ssh_now)
        if not running:
            now = ready[0][0]
            continue
        now, _, done = heapq.heappop(running)
        finished = [done]
        while running and running[0][0] == now:
            finished.append(heapq.heappop(running)[2])
        for urn in finished:
            ssh_now -= urn in ssh
            for dep in dependents.get(urn, ()):
                left[dep] -= 1
                if left[dep] == 0:
                    heapq.heappush(ready, (now, index[dep], dep))
    return Run(makespan_s=now, peak_ssh=peak, ssh_steps=len(ssh))


@dataclass(frozen=True)
class Sessions:
    through_jump: int  # SSH steps dialled through the jump host (its sshd relays each)
    to_jump: int  # SSH steps on the jump host itself
    held_with_leak: int  # open on the jump host's sshd at the end of the `up`


def _connection(reg) -> dict:
    conn = reg.inputs.get("connection") or {}
    return conn.get("value", conn) if isinstance(conn, dict) else {}


def ssh_sessions(graph) -> Sessions:
    """pulumi-command 1.2.1 never closes a step's SSH client, nor, through a jump host, the
    proxy client (provider/pkg/provider/remote/commandOutputs.go run, connection.go Dial):
    every step leaves its session on the jump host's sshd open until the provider exits,
    i.e. until the end of the `up`. So what one `up` opens is what is held at its end."""
    steps = [_connection(r) for r in graph if r.type in SSH_TYPES]
    proxied = sum(1 for c in steps if c.get("proxy"))
    jump_hosts = {json.dumps(c["proxy"].get("host")) for c in steps if c.get("proxy")}
    direct = sum(1 for c in steps if not c.get("proxy") and json.dumps(c.get("host")) in jump_hosts)
    return Sessions(through_jump=proxied, to_jump=direct, held_with_leak=proxied + direct)


def state_bytes(graph) -> int:
    """Bytes of inputs the program registers: what the state stores (and, for assets and
    Commands, stores again among the outputs) at every checkpoint."""
    return sum(len(json.dumps(r.inputs, sort_keys=True, default=str)) for r in graph)


def per_node(smaller, larger) -> tuple[int, int]:
    """(resources, SSH steps) one more worker adds: `larger` has one worker more."""
    new = [r for r in larger if r.urn not in smaller.by_urn]
    return len(new), sum(1 for r in new if r.type in SSH_TYPES)
