"""docs/architecture.md, troubleshooting.md, security.md and the consumer README stay true.

Each check ties a statement in the docs to the code it describes: the diagrams name every
component and phase the program declares, the quoted error messages exist in the
scripts, the NetworkPolicy snippet equals the policies the program deploys (and passes
strict upstream validation), and every relative link resolves. The Mermaid syntax itself
is not checked here: its only parser is the mermaid npm package, which scripts/test.sh
does not install.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MINE = [DOCS / "architecture.md", DOCS / "troubleshooting.md", DOCS / "security.md",
        ROOT / "examples" / "consumer" / "README.md"]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "policy"))


def text(path: Path) -> str:
    return path.read_text()


def mermaid_blocks(md: str) -> list[str]:
    return re.findall(r"```mermaid\n(.*?)```", md, re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_component_diagram_names_every_component_of_main():
    tree = ast.parse(text(ROOT / "__main__.py"))
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert {"load_config", "export_outputs", "SshAccess", "KubeadmCluster"} <= called
    components, phases, *_ = mermaid_blocks(text(DOCS / "architecture.md"))
    # The components (classes) and the two functions that frame them; helpers such as
    # tune_gc are not part of the architecture.
    shown = {n for n in called if n[0].isupper()} | {"load_config", "export_outputs"}
    missing = [name for name in sorted(shown) if name not in components]
    assert not missing, f"docs/architecture.md's component diagram lacks {missing}"


def test_phase_diagram_names_every_phase():
    node_phases = re.findall(r'PhaseSpec\("([a-z-]+)"', text(ROOT / "components" / "nodes" / "bootstrap.py"))
    cluster_py = text(ROOT / "components" / "cluster" / "__init__.py")
    cluster_phases = [p.rstrip("-") for p in re.findall(r'phase=f?"([a-z-]+)', cluster_py)]
    assert len(node_phases) >= 5 and "kubeadm-init" in cluster_phases
    _, phases, *_ = mermaid_blocks(text(DOCS / "architecture.md"))
    missing = [p for p in node_phases + cluster_phases if p not in phases]
    assert not missing, f"docs/architecture.md's phase diagram lacks {missing}"


def test_troubleshooting_covers_the_required_failures():
    headings = re.findall(r"^## (.+)$", text(DOCS / "troubleshooting.md"), re.M)
    for topic in ("/dev/kvm", "MTU", "Pending", "ContainerCreating", "Image pulls", "Drains"):
        assert any(topic in h for h in headings), f"no troubleshooting section about {topic}: {headings}"


@pytest.mark.parametrize("quote, script", [
    ("this node cannot run Kubernetes with Kata", "node/00-preflight.sh"),
    ("no vmx/svm flag in /proc/cpuinfo", "node/00-preflight.sh"),
    ("/dev/kvm cannot be opened for read and write", "node/00-preflight.sh"),
    ("ctr could not run a Kata container", "lib/kata-smoke.sh"),
    ("failed or did not finish within", "cluster/drain.sh"),
    ("so its removal", "cluster/drain.sh"),
    ("cannot reach the API to drain", "cluster/drain.sh"),
    ("--ignore-daemonsets --delete-emptydir-data", "cluster/drain.sh"),
    ("/etc/containerd/conf.d", "node/20-containerd.sh"),
    ("10-katak8s.toml", "node/20-containerd.sh"),
    ("crio.conf.d/50-katak8s.conf", "node/20-crio.sh"),
    ("skip_mount_home", "node/20-crio.sh"),
    ("reconnect_timeout_ms", "node/30-kata.sh"),
])
def test_quoted_messages_and_paths_exist_in_the_scripts(quote, script):
    docs = re.sub(r"\s+", " ", text(DOCS / "troubleshooting.md") + text(DOCS / "security.md"))
    assert quote in docs
    assert quote in text(ROOT / "scripts" / "remote" / script), f"scripts/remote/{script} no longer says {quote!r}"


def test_troubleshooting_numbers_match_the_code():
    from components.cluster import kubeadm
    from components.nodes import bootstrap

    doc = text(DOCS / "troubleshooting.md")
    assert kubeadm.RUNTIME_REQUEST_TIMEOUT == "10m" and "waits 10 minutes (`runtimeRequestTimeout`)" in doc
    assert f"gets {bootstrap.AGENT_RECONNECT_TIMEOUT_MS // 1000} s to connect" in doc
    declared = yaml.safe_load(text(ROOT / "Pulumi.yaml"))["config"]["drainTimeoutSeconds"]
    assert f"within {declared['default']}s" in doc and "(up to 3600)" in doc


def test_security_baseline_snippet_is_what_the_program_deploys():
    """The YAML users copy equals the first two kata-demo policies, and is valid."""
    from components import versions
    from components.kubernetes import policies

    snippet = re.search(r"```yaml\n(.*?)```", text(DOCS / "security.md"), re.S).group(1)
    docs = list(yaml.safe_load_all(snippet.replace("<ns>", "team-a")))
    deployed = {p["metadata"]["name"]: p for p in policies.network_policies()}
    for doc in docs:
        assert doc["spec"] == deployed[doc["metadata"]["name"]]["spec"]
        kubernetes_validate.validate(doc, versions.KUBERNETES_PATCHES[versions.DEFAULT_KUBERNETES_VERSION],
                                     strict=True)
    table = text(DOCS / "security.md").split("## NetworkPolicy baseline", 1)[1]
    assert sorted(re.findall(r"^\| `([a-z-]+)` \|", table, re.M)) == sorted(deployed)


def test_security_doc_matches_ports_secrets_and_policy_names():
    import katak8s_policies as kp

    from components import outputs, versions

    doc = text(DOCS / "security.md")
    assert f"TCP {versions.SSH_PORT}" in doc and f"TCP {versions.API_PORT}" in doc
    for name in outputs.SECRET_OUTPUTS:
        assert f"output `{name}` (secret)" in doc
    assert f"`{kp.KATA_NAMESPACE_LABEL}: \"true\"`" in doc and f"`{kp.RUNC_EXEMPT_ANNOTATION}`" in doc
    from components.cluster import kubeadm

    assert kubeadm.JOIN_TOKEN_TTL == "30m" and "token TTL 30 min" in doc


@pytest.mark.parametrize("path", MINE, ids=lambda p: p.name)
def test_relative_links_resolve(path):
    for target in re.findall(r"\]\(([^)\s]+)\)", text(path)):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        assert dest.exists(), f"{path.name}: broken link {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", text(dest), re.M)
            assert anchor in {slug(h) for h in headings}, f"{path.name}: no #{anchor} in {dest.name}"
