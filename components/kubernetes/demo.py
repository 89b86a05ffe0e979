"""The sample workloads' contract: names, labels and ports that the workloads, the
NetworkPolicies and scripts/smoke_test.py must agree on. Pure data, no Pulumi."""

from __future__ import annotations

NAMESPACE = "kata-demo"

KATA_APP = "kata-app"  # Deployment + Service, runtimeClassName: versions.KATA_HANDLER
RUNC_APP = "runc-app"  # the same Deployment without a runtime class (the runc twin)
CLIENT = "http-client"  # the one pod the NetworkPolicies let reach the kata service

# A workload in a kata namespace that deliberately runs on runc says why here; the policy
# pack (policy/katak8s_policies.py RUNC_EXEMPT_ANNOTATION) accepts it and nothing else.
RUNC_REASON_ANNOTATION = "katak8s.io/runc-reason"
RUNC_REASON = "the runc twin: the smoke test compares its kernel with the kata pods'"

APP_LABEL = "app"
CLIENT_LABELS = {"role": "http-client"}  # what the kata app's ingress policy admits
# What the egress policy lets call kata-app. Kept apart from CLIENT_LABELS on purpose: the
# smoke test's probe carries this label and not the client's, so its request is allowed
# out and then dropped by kata-app's ingress rule alone (review-k8s K5).
CALLER_LABELS = {"katak8s.io/calls": KATA_APP}

HTTP_PORT = 8080  # agnhost netexec's --http-port (/hostname, /echo?msg=)
# sampleLoadBalancer: kata-app behind an Octavia load balancer (the cloud controller).
PUBLIC_SERVICE = f"{KATA_APP}-public"
PUBLIC_PORT = 80
PORT_NAME = "http"
SERVICE_HOST = f"{KATA_APP}.{NAMESPACE}.svc"

# OpenStack's metadata service (nova metadata API): no policy may ever allow it.
METADATA_CIDR = "169.254.169.254/32"

# kube-dns as kubeadm deploys CoreDNS.
DNS_NAMESPACE = "kube-system"
DNS_LABELS = {"k8s-app": "kube-dns"}
DNS_PORT = 53
