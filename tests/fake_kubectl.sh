# shellcheck shell=bash
# A fake Kubernetes API behind the sandbox's kubectl stub (tests/fake_cluster.py installs it
# as a `run` rule: sourced with the original "$@", $ROOT, $STATE and $SB set). It answers
# exactly the calls scripts/remote/lib/upgrade.sh, kube.sh and the cluster scripts make, keeps its
# objects as files under FAKE_API (shared by the sandboxes of one test cluster, one per
# node), and refuses, like the Node authorizer, a kubelet credential reading any Node but
# its own. Anything else fails loudly, so a script can never pass on an unanswered call.
api=${FAKE_API:-${SB}/api}
mkdir -p "${api}/nodes"
creds=${KUBECONFIG:-}
namespace=""
format=""
ignore=0
rest=()
while (( $# )); do
  case $1 in
    --kubeconfig) creds=$2; shift 2 ;;
    --kubeconfig=*) creds=${1#*=}; shift ;;
    -n|--namespace) namespace=$2; shift 2 ;;
    -o) format=$2; shift 2 ;;
    -o*) format=${1#-o}; shift ;;
    --ignore-not-found) ignore=1; shift ;;
    --request-timeout=*|--no-headers|--overwrite|--ignore-daemonsets|--delete-emptydir-data) shift ;;
    --timeout=*|--dry-run=*) shift ;;
    *) rest+=("$1"); shift ;;
  esac
done
set -- "${rest[@]}"
printf '%s\n' "kubectl $*" >>"${api}/log"
self=$(cat "${STATE}/facts/hostname" 2>/dev/null || true)
node_dir() { printf '%s/nodes/%s' "${api}" "$1"; }

if [[ ${creds} == *kubelet.conf && ! ( $1 == get && $2 == node && ${3:-} == "${self}" ) ]]; then
  echo "Error from server (Forbidden): a kubelet may read only its own Node" >&2
  exit 1
fi

# value NODE PATH: one field of a Node, "" when unset.
value() {
  local d key
  d=$(node_dir "$1")
  case $2 in
    .status.nodeInfo.kubeletVersion) cat "${d}/kubelet" ;;
    .spec.unschedulable) [[ ! -f ${d}/unschedulable ]] || printf true ;;
    '.status.conditions[?(@.type=="Ready")].status') if [[ -f ${d}/notready ]]; then printf False; else printf True; fi ;;
    .metadata.annotations.*)
      key=${2#.metadata.annotations.}
      key=${key//\\./.}
      cat "${d}/annotations/${key//\//_}" 2>/dev/null || true ;;
    *) echo "fake kubectl: no field $2" >&2; exit 2 ;;
  esac
}

case "$1 ${2:-}" in
  "get --raw=/readyz") echo ok ;;
  "get node")
    d=$(node_dir "$3")
    if [[ ! -d ${d} ]]; then
      (( ignore )) && exit 0
      echo "Error from server (NotFound): nodes \"$3\" not found" >&2
      exit 1
    fi
    case ${format} in
      name) echo "node/$3" ;;
      jsonpath=*) path=${format#jsonpath=}; path=${path#\{}; value "$3" "${path%\}}" ;;
      *) echo "fake kubectl: format ${format}" >&2; exit 2 ;;
    esac ;;
  "get nodes")
    column=${format#*VALUE:}
    for d in "${api}"/nodes/*/; do
      [[ -d ${d} ]] || continue
      name=$(basename "${d}")
      got=$(value "${name}" "${column}")
      printf '%s %s\n' "${name}" "${got:-<none>}"
    done ;;
  "annotate node")
    d=$(node_dir "$3")
    [[ -d ${d} ]] || { echo "Error from server (NotFound): nodes \"$3\" not found" >&2; exit 1; }
    mkdir -p "${d}/annotations"
    for a in "${@:4}"; do
      if [[ ${a} == *=* ]]; then key=${a%%=*}; printf '%s' "${a#*=}" >"${d}/annotations/${key//\//_}"
      else key=${a%-}; rm -f "${d}/annotations/${key//\//_}"; fi
    done
    echo "node/$3 annotated" ;;
  "cordon "*)
    touch "$(node_dir "$2")/unschedulable"
    # A test's race: another node's drain marks that node at this very moment.
    if [[ -f $(node_dir "$2")/race ]]; then
      other=$(cat "$(node_dir "$2")/race"); rm -f "$(node_dir "$2")/race"
      printf 'v0' >"$(node_dir "${other}")/annotations/katak8s.io_cordoned-by-upgrade"
      touch "$(node_dir "${other}")/unschedulable"
    fi
    echo "node/$2 cordoned" ;;
  "uncordon "*) rm -f "$(node_dir "$2")/unschedulable"; echo "node/$2 uncordoned" ;;
  "drain "*)
    d=$(node_dir "$2")
    if [[ -f ${d}/drain-fails ]]; then
      echo "error when evicting pods/\"web-0\" -n \"shop\": Cannot evict pod as it would violate the pod's disruption budget." >&2
      exit 1
    fi
    touch "${d}/unschedulable" "${d}/drained"
    echo "node/$2 drained" ;;
  "get configmap")
    [[ ${namespace} == kube-system && $3 == kubeadm-config ]] || exit 1
    cat "${api}/cluster-config" ;;
  "create configmap")
    for a in "$@"; do
      [[ ${a} == --from-file=ClusterConfiguration=* ]] && { echo "FAKE-CONFIGMAP"; cat "${a#*=*=}"; }
    done ;;
  "replace -f")
    body=$(cat)
    [[ ${body} == FAKE-CONFIGMAP* ]] || exit 1
    printf '%s\n' "${body#FAKE-CONFIGMAP$'\n'}" >"${api}/cluster-config" ;;
  *) echo "fake kubectl: unexpected call: $*" >&2; exit 2 ;;
esac
