"""The katak8s stack outputs this project reads, and how it reads them.

The names are the cluster stack's public interface (the README's "Outputs" table,
exported by components/outputs.py). They are spelled once, here; the consumer's tests
check them against what the cluster program really exports, so a rename on either side
fails a test instead of a deployment.
"""

from __future__ import annotations

from collections.abc import Sequence

KUBECONFIG = "kubeconfig"  # secret string: admin kubeconfig, server = the public API endpoint
RUNTIME_CLASS_NAMES = "runtimeClassNames"  # list of strings, the default Kata class first
CLUSTER_NAME = "clusterName"  # string: stable identity of the cluster

REQUIRED = (KUBECONFIG, RUNTIME_CLASS_NAMES, CLUSTER_NAME)


def default_runtime_class(names: Sequence[str] | None) -> str:
    """The cluster's default Kata RuntimeClass: the first of runtimeClassNames."""
    if not names or not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"the cluster stack's {RUNTIME_CLASS_NAMES} output must be a non-empty list of "
                         f"RuntimeClass names, got {names!r}")
    return names[0]
