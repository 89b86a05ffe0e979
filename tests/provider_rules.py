"""Each provider's replace-or-update decision, for tests/engine_model.py (rules C1 and O1).

  C1 pulumi-command v1.2.1 common/inputs.go + the SDK's replace_on_changes=["triggers[*]"]:
     only `triggers` replaces a Command or CopyToRemote; any other change is an update
     (pulumi-go-provider v1.3.0 infer/resource.go Diff L1132-1250).
  O1 terraform-provider-openstack (27f26125, schemas equal to v3.4.0): the ForceNew
     arguments below replace; every other change is an in-place update. Instance:
     flavor_name resizes (resource_openstack_compute_instance_v2.go Update L1003-1090),
     image_id rebuilds. The bridge reports diff keys under their Pulumi names.
  K1 pulumi-kubernetes provider/pkg/provider/diff.go forceNewProperties: a new
     metadata.name or .namespace replaces an object, and per kind the paths of its `forceNew`
     table (apps Deployment/StatefulSet .spec.selector, core Service .spec.clusterIP/.type,
     Secret .type/.data/.stringData, ConfigMap .data/.binaryData); any other change (labels,
     annotations, the pod template) is an update. Unknown old values (a dependency
     being replaced) count as a replace of any object whose metadata is unknown.
  E3 pulumi/pulumi step_generator.go applyReplaceOnChanges L3197-3224: a changed key under a
     replace_on_changes path is a replace, whatever the provider says.
"""

from __future__ import annotations

from harness import Registration

# O1: ForceNew arguments per resource type (Pulumi names).
FORCE_NEW: dict[str, frozenset[str]] = {
    "openstack:compute/instance:Instance": frozenset(
        {"userData", "keyPair", "networks", "blockDevices", "schedulerHints"}),
    "openstack:networking/port:Port": frozenset({"networkId"}),
    "openstack:networking/floatingIp:FloatingIp": frozenset({"pool"}),
    "openstack:compute/keypair:Keypair": frozenset({"name", "publicKey"}),
    "openstack:compute/serverGroup:ServerGroup": frozenset({"name", "policies"}),
    "openstack:loadbalancer/loadBalancer:LoadBalancer": frozenset({"vipSubnetId", "loadbalancerProvider"}),
    "openstack:loadbalancer/member:Member": frozenset({"address", "subnetId", "protocolPort", "poolId"}),
    "tls:index/privateKey:PrivateKey": frozenset({"algorithm", "rsaBits", "ecdsaCurve"}),
    "openstack:networking/secGroupRule:SecGroupRule": frozenset(
        {"description", "direction", "ethertype", "portRangeMin", "portRangeMax", "protocol", "remoteGroupId",
         "remoteIpPrefix", "remoteAddressGroupId", "securityGroupId"}),
    "openstack:networking/subnet:Subnet": frozenset({"networkId", "cidr", "prefixLength", "ipVersion"}),
    "openstack:networking/routerInterface:RouterInterface": frozenset({"routerId", "subnetId", "portId"}),
    "openstack:loadbalancer/listener:Listener": frozenset({"protocol", "protocolPort", "loadbalancerId"}),
    "openstack:loadbalancer/pool:Pool": frozenset({"protocol", "loadbalancerId", "listenerId"}),
    "openstack:loadbalancer/monitor:Monitor": frozenset({"poolId", "type"}),
}
# In-place updates of an Instance that disrupt the guest (O1).
DISRUPTIVE_UPDATES = {"flavorName": "resized in place (Nova resize: reboot)",
                      "imageId": "rebuilt in place (disk wiped)"}
COMMAND_TYPES = ("command:remote:Command", "command:remote:CopyToRemote")


# K1: the forceNew table (type -> (input key, path inside it)) for the kinds katak8s declares.
KUBE_FORCE_NEW: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "kubernetes:apps/v1:Deployment": (("spec", ("selector",)),),
    "kubernetes:core/v1:Service": (("spec", ("clusterIP",)), ("spec", ("type",))),
    "kubernetes:core/v1:Secret": (("type", ()), ("data", ()), ("stringData", ())),
    "kubernetes:core/v1:ConfigMap": (("data", ()), ("binaryData", ())),
}


def _at(value: object, path: tuple[str, ...]) -> object:
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _kube_replace_keys(reg: Registration, changed: set[str], old: Registration | None) -> set[str]:
    if old is None:  # values unknown: judged coarsely
        return {"metadata"} & changed
    keys = set()
    if "metadata" in changed:
        before, after = old.inputs.get("metadata") or {}, reg.inputs.get("metadata") or {}
        if any(_at(before, (k,)) != _at(after, (k,)) for k in ("name", "namespace")):
            keys.add("metadata")
    for key, path in KUBE_FORCE_NEW.get(reg.type, ()):
        if key in changed and _at(old.inputs.get(key), path) != _at(reg.inputs.get(key), path):
            keys.add(key)
    return keys


def provider_replace_keys(reg: Registration, changed: set[str], old: Registration | None = None) -> set[str]:
    """The keys that make the provider (C1, O1, K1) or the replace_on_changes option (E3) replace.
    `old`: the deployed registration, when its values are known."""
    if reg.type in COMMAND_TYPES:
        keys = {"triggers"} & changed
    elif reg.type.startswith("kubernetes:"):
        keys = _kube_replace_keys(reg, changed, old)
    else:
        keys = FORCE_NEW.get(reg.type, frozenset()) & changed
    keys |= {k for k in changed for path in reg.replace_on_changes if path.split("[")[0].split(".")[0] == k}
    return keys
