"""Interpreter tuning for evaluating large stacks (issue #8).

A 3+200 stack declares ~4,000 resources, each with a handful of long-lived Outputs and
asyncio tasks. CPython's generational GC rescans every live container object on each
full collection, and the default gen-0 threshold (700 allocations) triggers those scans
thousands of times during one evaluation: profiling showed the cost per resource rising
from 6.1 ms at 50 workers to 8.4 ms at 200 (benchmarks/bench.py). The program creates
almost no reference cycles that need prompt collection, so collecting less often is safe;
memory stays bounded because collections still run, only less often.
"""

from __future__ import annotations

import gc

# gen-0 threshold: allocations between young collections (CPython default 700).
GEN0_THRESHOLD = 100_000


def tune_gc() -> None:
    """Move everything imported so far out of the collector's view, and collect less often."""
    if gc.get_freeze_count() == 0:  # once per process: a program runs once per `pulumi` run
        gc.collect()
        gc.freeze()  # modules, classes and SDK tables: never garbage, never rescanned
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
