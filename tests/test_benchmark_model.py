"""The benchmark's model stays true to the program (no timing here: the benchmark prints
figures, benchmarks/bench.py). A renamed phase must not silently drop out of the model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import bench  # noqa: E402


@pytest.fixture(scope="module")
def graphs():
    return {size: bench._graph(workers, cps) for size, (cps, workers) in
            {"1+2": (1, 2), "3+6": (3, 6)}.items()}


def test_every_duration_matches_a_real_resource(graphs):
    g = graphs["3+6"]
    for typ, part, _seconds, why in bench.DURATIONS:
        matched = [r for r in g if r.type == typ and bench.duration(r.type, r.name) == _seconds]
        assert matched, f"no {typ} named *{part}* in the program: {why}"


def test_critical_path_does_not_grow_with_the_cluster(graphs):
    small, large = (bench.critical_path(graphs[s]) for s in ("1+2", "3+6"))
    assert small[0] == large[0] and small[0] >= 6  # preflight .. kubeconfig on cp-0
    assert small[1] == large[1]
    chain = large[2]
    assert "bench-cp-0-kubeadm-init (90 s)" in chain
    assert not any(n.startswith("bench-worker-") for n in chain), "a worker is on the critical path"


def test_only_the_kata_phases_rerun_when_kata_changes():
    figures = bench.stability(1, 1)
    assert figures["re_eval_changed"] == 0 and figures["scale_out_changed_existing"] == []
    assert figures["kata_version_changed_phases"] == ["bench-cp-0-kata", "bench-worker-0-kata"]
