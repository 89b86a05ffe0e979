#!/usr/bin/env bash
set -euo pipefail
# katak8s etcd-member helpers, shared by scripts/remote/cluster/reset.sh (scale-in) and join.sh
# (undoing a failed control-plane join); declared there with `# katak8s-lib:`, so their
# programs carry its sum (components/nodes/phase.py). Functions and constants only.

# kubeadm's warnings when remove-etcd-member did not remove the member (phases/reset/
# removeetcdmember.go; cmd/reset.go when the Node or the kubeadm-config is unreadable).
ETCD_NOT_REMOVED='failed to remove etcd member|unable to fetch the kubeadm-config configmap'

# etcd_member_left OUTPUT: true when `kubeadm reset` OUTPUT says the member was not removed.
etcd_member_left() {
  grep -qiE "${ETCD_NOT_REMOVED}" <<<"$1"
}

# etcd_member_fix NODE: how to remove NODE's etcd member by hand, from the first control plane.
etcd_member_fix() {
  printf '%s' "The etcd cluster still counts the member of $1, and one more lost control plane may" \
    " cost quorum. Remove it on the first control plane: kubectl -n kube-system exec" \
    " etcd-<first control plane> -- etcdctl --endpoints=https://127.0.0.1:2379" \
    " --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/server.crt" \
    " --key=/etc/kubernetes/pki/etcd/server.key member list (then: ... member remove <ID of $1>)"
}
