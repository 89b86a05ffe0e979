#!/usr/bin/env bash
set -euo pipefail
# The destroy guard of the OpenStack cloud controller, run from the first control plane.
#   MODE=arm (its create): checks that the admin kubeconfig is there; changes nothing.
#   MODE=release (its delete, which `pulumi destroy` runs before the controller, the
#   servers and the network go): deletes every Service of type LoadBalancer and waits,
#   bounded by LB_TIMEOUT, until none is left. A Service leaves only when the cloud
#   controller removed its finalizer, which it does after it deleted the floating IP it
#   made and the Octavia load balancer, cascade, and waited for it to be gone
#   (cloud-provider-openstack pkg/openstack/loadbalancer.go ensureLoadBalancerDeleted,
#   pkg/util/openstack/loadbalancer.go DeleteLoadbalancer -> waitLoadbalancerDeleted).
#   Without this, the load balancers' ports keep the node subnet busy and the network
#   cannot be deleted (Neutron 409), and the load balancers and floating IPs leak.
#   With Cinder CSI (CINDER_CSI=true) the release then, if DELETE_VOLUMES=true, cordons every
#   node (a StatefulSet would otherwise recreate its pod and, for it, its claim: a new
#   volume; an unscheduled pod holds no claim and, with WaitForFirstConsumer, makes no
#   volume), deletes every PersistentVolumeClaim and the pods that hold one (claims and
#   generic ephemeral volumes), and waits until every Cinder PersistentVolume with reclaim
#   policy Delete is gone (the driver deleted its volume); volumes with policy Retain stay
#   and are listed. Otherwise it deletes none and lists the volumes that stay in Cinder.
#   The two waits share the delete's bound: LB_TIMEOUT, then VOLUME_TIMEOUT.
# Nothing is forced: on a timeout or an unreachable API it stops `pulumi destroy` with what
# is left and what to do.
# inputs: MODE (arm|release), CLOUD_CLUSTER_NAME, LB_TIMEOUT, VOLUME_TIMEOUT (seconds),
#         RESOURCE (its Pulumi name), CINDER_CSI (true|false), DELETE_VOLUMES (true|false), CSI_DRIVER
# shellcheck source=scripts/remote/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
# shellcheck source=/dev/null
source "${KATAK8S_PARAMS:-${1:?usage: $0 PARAMS_FILE}}"

ADMIN_CONF="${KATAK8S_ROOT}/etc/kubernetes/admin.conf"
LB_FILTER='{range .items[?(@.spec.type=="LoadBalancer")]}{.metadata.namespace}{"/"}{.metadata.name}{"\n"}{end}'

PV_FILTER="{range .items[?(@.spec.csi.driver==\"${CSI_DRIVER:-}\")]}{.metadata.name}{\" \"}"
PV_FILTER+='{.spec.persistentVolumeReclaimPolicy}{" "}{.spec.csi.volumeHandle}{" "}'
PV_FILTER+='{.spec.claimRef.namespace}{"/"}{.spec.claimRef.name}{"\n"}{end}'
POD_CLAIMS='{range .items[*]}{.metadata.namespace}{"/"}{.metadata.name}{" "}'
POD_CLAIMS+='{.spec.volumes[*].persistentVolumeClaim.claimName}{.spec.volumes[*].ephemeral}{"\n"}{end}'

kube() { KUBECONFIG="${ADMIN_CONF}" kubectl --request-timeout=30s "$@"; }

# load_balancers: namespace/name of every Service of type LoadBalancer; fails when the API
# does not answer (never taken for "none").
load_balancers() { kube get services --all-namespaces -o "jsonpath=${LB_FILTER}"; }

no_load_balancers() {
  local left
  left=$(load_balancers) || return 1
  [[ -z "${left}" ]]
}

# octavia_names LIST: the Octavia load balancer name of each namespace/name.
octavia_names() {
  local svc
  for svc in $1; do
    printf 'kube_service_%s_%s_%s ' "${CLOUD_CLUSTER_NAME}" "${svc%%/*}" "${svc#*/}"
  done
}

# cinder_volumes: "pv policy volume-id namespace/claim" of each Cinder PersistentVolume.
cinder_volumes() { kube get persistentvolumes -o "jsonpath=${PV_FILTER}"; }

no_deletable_volumes() {
  local left
  left=$(cinder_volumes) || return 1
  ! grep -q ' Delete ' <<<"${left}"
}

release_volumes() {
  local volumes pods pod claims left
  volumes=$(retry 5 cinder_volumes) || fatal "cannot list the PersistentVolumes; nothing more was deleted." \
    "Run 'pulumi destroy' again once the API answers"
  if [[ "${DELETE_VOLUMES}" != true ]]; then
    [[ -z "${volumes}" ]] || log_warn "these Cinder volumes stay (deleteVolumesOnDestroy is false), with" \
      "metadata cinder.csi.openstack.org/cluster=${CLOUD_CLUSTER_NAME} (pv, policy, volume id, claim):" \
      "${volumes//$'\n'/; }"
    return 0
  fi
  [[ -n "${volumes}" ]] || { log_info "no Cinder volume: nothing to delete"; return 0; }
  log_info "cordoning every node, so that no workload controller makes a new pod, claim or volume"
  retry 3 kube cordon --selector kubernetes.io/os=linux >&2 \
    || fatal "could not cordon the nodes; nothing was deleted. Run 'pulumi destroy' again"
  log_info "deleting every PersistentVolumeClaim (deleteVolumesOnDestroy) and the pods that hold one"
  retry 3 kube delete persistentvolumeclaims --all --all-namespaces --wait=false >&2 \
    || fatal "could not delete the PersistentVolumeClaims; run 'pulumi destroy' again"
  pods=$(retry 3 kube get pods --all-namespaces -o "jsonpath=${POD_CLAIMS}") \
    || fatal "could not list the pods that hold claims (the claims are being deleted, the nodes cordoned);" \
      "run 'pulumi destroy' again"
  while read -r pod claims; do
    [[ -n "${claims}" ]] || continue
    kube delete pod --namespace "${pod%%/*}" "${pod#*/}" --ignore-not-found --wait=false >&2 || true
  done <<<"${pods}"
  if ! wait_for "${VOLUME_TIMEOUT}" "every Cinder volume with reclaim policy Delete gone" no_deletable_volumes; then
    left=$(cinder_volumes 2>/dev/null || echo "(the API stopped answering)")
    fatal "after ${VOLUME_TIMEOUT}s these Cinder volumes are not deleted yet (pv, policy, volume id, claim):" \
      "${left//$'\n'/; }. A claim stays while a pod uses it ('kubectl get pods -A -o wide'); a volume" \
      "stays while attached or with snapshots ('openstack volume show <id>'). Fix that and run" \
      "'pulumi destroy' again. Every node is cordoned now: to keep the cluster instead," \
      "'kubectl uncordon -l kubernetes.io/os=linux'"
  fi
  left=$(cinder_volumes 2>/dev/null || true)
  [[ -z "${left}" ]] || log_warn "these Cinder volumes stay (reclaim policy Retain):" "${left//$'\n'/; }"
}

release() {
  local services svc left
  services=$(retry 5 load_balancers) \
    || fatal "cannot reach the Kubernetes API to delete the LoadBalancer Services, so nothing was deleted" \
      "and the destroy stopped before the network. Bring the control plane back and run 'pulumi destroy'" \
      "again. If the cluster is lost for good: delete the Octavia load balancers named" \
      "kube_service_${CLOUD_CLUSTER_NAME}_* ('openstack loadbalancer list', then 'openstack loadbalancer" \
      "delete --cascade <id>') and the floating IPs described 'Floating IP for Kubernetes external service" \
      "... from cluster ${CLOUD_CLUSTER_NAME}', then 'pulumi state delete' this command (${RESOURCE}) and" \
      "'pulumi destroy' again"
  if [[ -z "${services}" ]]; then
    log_info "no Service of type LoadBalancer: nothing to release"
    return 0
  fi
  for svc in ${services}; do
    log_info "deleting Service ${svc} (its Octavia load balancer and floating IP go with it)"
    retry 3 kube delete service --namespace "${svc%%/*}" "${svc#*/}" --ignore-not-found --wait=false >&2 \
      || fatal "could not delete Service ${svc}; nothing else was forced. Run 'pulumi destroy' again"
  done
  if ! wait_for "${LB_TIMEOUT}" "every LoadBalancer Service and its load balancer gone" no_load_balancers; then
    left=$(load_balancers 2>/dev/null || echo "(the API stopped answering)")
    fatal "after ${LB_TIMEOUT}s these LoadBalancer Services are still being deleted: ${left//$'\n'/ }." \
      "The cloud controller removes each only once its Octavia load balancer is gone: see" \
      "'kubectl describe service' events and the controller's logs ('kubectl -n kube-system logs" \
      "daemonset/openstack-cloud-controller-manager'); their load balancers are named" \
      "$(octavia_names "${left}")('openstack loadbalancer show <name>'). Fix the cause (a load balancer in" \
      "ERROR or PENDING state, a quota or policy error) and run 'pulumi destroy' again"
  fi
}

main() {
  require_root
  case "${MODE:?}" in
    arm)
      [[ -f "${ADMIN_CONF}" ]] || fatal "no ${ADMIN_CONF#"${KATAK8S_ROOT}"} on this node: it is not the first" \
        "control plane of an initialized cluster"
      log_info "armed: 'pulumi destroy' deletes every LoadBalancer Service here first" ;;
    release)
      release
      [[ "${CINDER_CSI}" != true ]] || release_volumes ;;
    *) fatal "MODE must be arm or release, got ${MODE}" ;;
  esac
}

main "$@"
