"""An application stack on a katak8s cluster.

It reads the cluster stack through StackReference, talks to the cluster through a
Kubernetes provider built from the cluster's kubeconfig output, and runs a small HTTP
service whose pods are Kata VMs (runtimeClassName from the runtimeClassNames output).

    pulumi config set clusterStack <org>/katak8s/<stack>
    pulumi up
"""

import pulumi
import pulumi_kubernetes as k8s
from katak8s_outputs import CLUSTER_NAME, KUBECONFIG, RUNTIME_CLASS_NAMES, default_runtime_class

cfg = pulumi.Config()
cluster = pulumi.StackReference("cluster", stack_name=cfg.require("clusterStack"))

# require_output stops the update with the missing name instead of deploying half a
# workload. The kubeconfig is a secret in the cluster stack and stays one here.
kubeconfig = pulumi.Output.secret(cluster.require_output(KUBECONFIG))
runtime_class = cluster.require_output(RUNTIME_CLASS_NAMES).apply(default_runtime_class)

# cluster_identifier: a rotated kubeconfig updates the provider instead of replacing it
# (and with it every object it manages).
provider = k8s.Provider("katak8s", kubeconfig=kubeconfig,
                        cluster_identifier=cluster.require_output(CLUSTER_NAME))
k8s_opts = pulumi.ResourceOptions(provider=provider)

labels = {"app.kubernetes.io/name": "hello-kata"}
namespace = k8s.core.v1.Namespace(
    "apps",
    metadata={"name": cfg.get("namespace", "hello-kata"), "labels": {
        # Pod Security Admission at its strictest; these pods pass it.
        "pod-security.kubernetes.io/enforce": "restricted",
        # The katak8s policy pack holds pods here to a runtime class and limits.
        "katak8s.io/kata-namespace": "true",
    }},
    opts=k8s_opts,
)

container = {
    "name": "web",
    "image": cfg.get("image", "registry.k8s.io/e2e-test-images/agnhost:2.66.1"),
    "args": ["netexec", "--http-port=8080"],
    "ports": [{"name": "http", "containerPort": 8080}],
    "readinessProbe": {"httpGet": {"path": "/hostname", "port": "http"}},
    # Kata sizes each pod's VM from its limits; without them every VM gets 1 vCPU / 2 GiB.
    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                  "limits": {"cpu": "500m", "memory": "128Mi"}},
    "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "runAsUser": 65534,
                        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
}
deployment = k8s.apps.v1.Deployment(
    "hello-kata",
    metadata={"namespace": namespace.metadata.name, "labels": labels},
    spec={
        "replicas": cfg.get_int("replicas", 2),
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels},
                     "spec": {"runtimeClassName": runtime_class, "containers": [container]}},
    },
    opts=k8s_opts,
)
service = k8s.core.v1.Service(
    "hello-kata",
    metadata={"namespace": namespace.metadata.name, "labels": labels},
    spec={"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    opts=k8s_opts,
)

pulumi.export("namespace", namespace.metadata.name)
pulumi.export("service", service.metadata.name)
pulumi.export("runtimeClassName", runtime_class)
