"""Hostile or subtle configurations (issue #12, section 1): each is refused before any
resource exists, naming the key, the value and the rule, and never crashes the validator."""

from __future__ import annotations

import json

import pytest

from components.config import ConfigError, parse_config


def _raw(**extra):
    base = {"controlPlaneFlavor": "f", "workerFlavor": "f", "externalNetwork": "n",
            "allowedCidrs": '["203.0.113.0/24"]'}
    return {**base, **{k: json.dumps(v) if isinstance(v, list) else v for k, v in extra.items()}}


REFUSED = {
    "ssh user with a space": ({"sshUser": "ubuntu; rm"}, "katak8s:sshUser: must be a login name"),
    "ssh user with a slash": ({"sshUser": "../root"}, "katak8s:sshUser: must be a login name"),
    "ssh user too long": ({"sshUser": "a" * 33}, "katak8s:sshUser: must be a login name"),
    "loopback pod range": ({"podCidr": "127.0.0.0/16"}, "katak8s:podCidr: must not overlap the loopback"),
    "link-local node range": ({"nodeCidr": "169.254.0.0/24"}, "katak8s:nodeCidr: must not overlap the link-local"),
    "multicast service range": ({"serviceCidr": "224.0.0.0/12"},
                                "katak8s:serviceCidr: must not overlap the multicast"),
    "reserved pod range": ({"podCidr": "240.0.0.0/16"}, "katak8s:podCidr: must not overlap the reserved range"),
    "this-network node range": ({"nodeCidr": "0.0.0.0/24"}, "katak8s:nodeCidr: must not overlap the 'this network'"),
    "pod range holding loopback": ({"podCidr": "126.0.0.0/8", "serviceCidr": "10.96.0.0/12"}, None),
    "service range in this-network": ({"serviceCidr": "0.96.0.0/12"}, "katak8s:serviceCidr: must not overlap"),
    "this-network resolver": ({"dnsNameservers": ["0.1.2.3"]}, "katak8s:dnsNameservers[0]: must not be a"),
    "pod range smaller than a node's /24": ({"podCidr": "192.168.0.0/25"}, "katak8s:podCidr: must be a /8 to /24"),
    "pod range too large for node masks": ({"podCidr": "10.0.0.0/7"}, "katak8s:podCidr: must be a /8 to /24"),
    "service range too large": ({"serviceCidr": "10.0.0.0/11"}, "katak8s:serviceCidr: must be a /12 to /28"),
    "service range too small": ({"serviceCidr": "10.96.0.0/29"}, "katak8s:serviceCidr: must be a /12 to /28"),
    "resolver in the service range": ({"dnsNameservers": ["10.96.0.10"]},
                                      "katak8s:dnsNameservers[0]: must not fall inside katak8s:serviceCidr"),
    "loopback resolver": ({"dnsNameservers": ["127.0.0.53"]}, "katak8s:dnsNameservers[0]: must not be a loopback"),
    "allowed source in the pod range": ({"allowedCidrs": ["192.168.4.0/24"]},
                                        "katak8s:allowedCidrs[0]: must not fall inside katak8s:podCidr"),
    # review-k8s K13: a network pods must reach, inside their own ranges
    "office network under the default pod range": ({"podReachableCidrs": ["192.168.10.0/24"]},
                                                    "katak8s:podReachableCidrs[0]: must not overlap katak8s:podCidr"),
    "reachable network holding the service range": (
        {"podReachableCidrs": ["10.0.0.0/8"]}, "katak8s:podReachableCidrs[0]: must not overlap katak8s:serviceCidr"),
    "reachable network that is no CIDR": ({"podReachableCidrs": ["office"]},
                                          "katak8s:podReachableCidrs[0]: must be an IPv4 CIDR"),
    "reachable network beside the ranges": ({"podReachableCidrs": ["172.16.0.0/12", "10.128.0.0/9"]}, None),
    "arabic-indic digits": ({"workerCount": "\u0663"}, "katak8s:workerCount: must be an integer"),
    "huge integer": ({"workerCount": "9" * 400}, "katak8s:workerCount: must be an integer"),
    "too many resolvers": ({"dnsNameservers": [f"9.9.9.{i}" for i in range(1, 7)]},
                           "katak8s:dnsNameservers: must list at most 5"),
    "too many allowed sources": ({"allowedCidrs": [f"198.51.{i}.0/24" for i in range(40)]},
                                 "katak8s:allowedCidrs: must list at most 32"),
    "untested patch": ({"kubernetesVersion": "1.36.99"}, "katak8s:kubernetesVersion: is newer than the tested"),
    "version with leading zero": ({"kubernetesVersion": "1.036"}, "katak8s:kubernetesVersion: must be 1.M"),
    "version with non-ASCII digits": ({"kataVersion": "4.\u0661.0"}, "katak8s:kataVersion: must be a release"),
    "HA subnet without room for the nodes": (
        {"controlPlaneCount": "3", "workerCount": "8", "nodeCidr": "10.42.0.0/28"},
        "katak8s:nodeCidr: must hold 11 nodes plus 10 reserved addresses"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_hostile_configs_are_refused_by_key_and_rule(case):
    extra, message = REFUSED[case]
    if message is None:  # a neighbour of a special range, not inside it: accepted
        parse_config(_raw(**extra), stack="dev")
        return
    with pytest.raises(ConfigError) as err:
        parse_config(_raw(**extra), stack="dev")
    assert any(p.startswith(message) for p in err.value.problems), err.value.problems


def test_a_failed_count_adds_no_misleading_subnet_message():
    with pytest.raises(ConfigError) as err:
        parse_config(_raw(workerCount="many", nodeCidr="10.42.0.0/29"), stack="dev")
    assert [p.split(":")[1] for p in err.value.problems] == ["workerCount"], err.value.problems


@pytest.mark.parametrize("cidrs,world", [(["0.0.0.0/0"], True), (["0.0.0.0/1", "128.0.0.0/1"], True),
                                         (["0.0.0.0/1"], False), (["203.0.113.0/24"], False)])
def test_world_open_judges_the_union_of_allowed_cidrs(cidrs, world):
    assert parse_config(_raw(allowedCidrs=cidrs), stack="dev").opens_world is world


def test_the_defaults_and_the_dev_ranges_still_pass():
    cfg = parse_config(_raw(controlPlaneCount="3", workerCount="20", dnsNameservers=["9.9.9.9"]), stack="dev")
    assert cfg.pod_cidr == "192.168.0.0/16" and cfg.service_cidr == "10.96.0.0/12"


def test_an_untested_patch_is_accepted_only_when_asked_for():
    assert parse_config(_raw(kubernetesVersion="1.36.99", allowUntestedKubernetesPatch="true"),
                        stack="dev").kubernetes_patch == "1.36.99"
    assert parse_config(_raw(kubernetesVersion="1.36.0"), stack="dev").kubernetes_patch == "1.36.0"


def test_an_ha_subnet_without_room_for_the_load_balancer_ports_only_warns():
    """It may hold a live cluster already; a new nodeCidr would move every node."""
    cfg = parse_config(_raw(controlPlaneCount="3", workerCount="4", nodeCidr="10.42.0.0/28"), stack="dev")
    (warning,) = cfg.warnings
    assert "katak8s:nodeCidr 10.42.0.0/28 holds 7 nodes" in warning and "a /27 would" in warning
