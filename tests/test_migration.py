"""Moving a deployed stack from the previous release to this one, in the engine model
(tests/engine_model.py): the graph of the dev stack as scripts/plan.py saved it at 7fdb6ea
(a CopyToRemote of a self-contained bundle per phase, five phase commands per node), then
this checkout's program evaluated against it, as `pulumi up` would.

tests/data/graph-7fdb6ea-dev.json.gz was written by `scripts/plan.py --stack dev` on a
checkout of 7fdb6ea (gzip -9 of its graph.json)."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import pytest
from engine_model import simulate
from harness import Export, Graph, Registration, run_program
from plan import stack_config

DATA = Path(__file__).resolve().parent / "data" / "graph-7fdb6ea-dev.json.gz"
COMMAND = "command:remote:Command"
SERVER = "openstack:compute/instance:Instance"


@pytest.fixture(scope="module")
def migration():
    data = json.loads(gzip.decompress(DATA.read_bytes()))
    before = Graph([Registration(**row) for row in data["registrations"]], [],
                   {k: Export(v, False, True) for k, v in data["exports"].items()})
    config = stack_config("dev")
    warnings.simplefilter("ignore", DeprecationWarning)
    steps, after = simulate(before, lambda fresh: run_program(config, stack="dev", base=False, deployed=before,
                                                               fresh=fresh))
    return before, steps, after


def test_no_server_goes_and_nothing_is_drained_reset_or_deleted_from_the_cluster(migration):
    before, steps, _after = migration
    assert not [s for s in steps if s.reg.type == SERVER and s.op in ("delete", "replace")]
    for s in steps:
        if s.reg.type == COMMAND and s.op in ("delete", "replace"):
            # A command that is deleted or replaced runs its delete: none of these may have one.
            assert not s.reg.plain("delete"), f"{s.name} would run its delete ({s.op})"


def test_the_join_commands_re_run_in_place_and_the_old_per_phase_resources_go(migration):
    before, steps, after = migration
    ops = {s.name: s.op for s in steps}
    for name in ("dev-cp-0-join-credentials-dev-worker-0", "dev-worker-0-kubeadm-join",
                 "dev-cp-0-membership-dev-worker-0"):
        assert ops[name] == "update", (name, ops.get(name))
    gone = {s.name for s in steps if s.op == "delete"}
    assert {"dev-worker-0-kernel-copy", "dev-worker-0-kernel", "dev-worker-0-kube-packages"} <= gone
    created = {s.name for s in steps if s.op == "create"}
    assert {"dev-worker-0-scripts", "dev-worker-0-bootstrap"} <= created
    # Each node's new commands run after its copy of the scripts exists.
    boot = after.named("dev-worker-0-bootstrap")
    assert after.depends_on(boot, after.named("dev-worker-0-scripts"))
