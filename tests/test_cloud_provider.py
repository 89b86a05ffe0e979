"""The OpenStack cloud controller (issue #17, first slice): cloud-provider external from day 0,
the controller's application credential and Secret, its place in the order, and what a
deployed stack fixes. The whole program runs under the mocks (harness.run_program)."""

from __future__ import annotations

import configparser

import pytest
import yaml
from harness import SECRET_SIG, SECRET_VALUE, run_program, unsecret

from components import naming
from components import versions as v
from components.config import ConfigError, parse_config
from components.deployed import DeployedState, refusals
from components.kubernetes import cloud_controller as cc
from components.openstack import credentials as cred
from components.openstack import login

RELEASE = "kubernetes:helm.sh/v3:Release"
APP_CRED = "openstack:identity/applicationCredential:ApplicationCredential"
SECRET = "kubernetes:core/v1:Secret"
BASE = {"controlPlaneFlavor": "f", "workerFlavor": "f", "externalNetwork": "public",
        "allowedCidrs": ["203.0.113.0/24"]}


def _cfg(**raw):
    return parse_config({**BASE, **raw}, stack="dev")


def _docs(text: str) -> dict[str, dict]:
    return {d["kind"]: d for d in yaml.safe_load_all(text)}


def _kubelet_args(doc: dict) -> dict[str, str]:
    return {a["name"]: a["value"] for a in doc["nodeRegistration"]["kubeletExtraArgs"]}


@pytest.fixture(scope="module")
def graph():
    return run_program({"controlPlaneCount": 3, "workerCount": 2})


def _release(g, chart):
    (rel,) = [r for r in g.of_type(RELEASE) if r.plain("chart") == chart]
    return rel


# --- kubeadm: kubelets and kube-controller-manager ------------------------------------------


def test_every_kubelet_registers_external_with_its_own_server_as_provider_id(graph):
    init = _docs(graph.named("dev-cp-0-kubeadm-init").plain("stdin"))
    args = _kubelet_args(init["InitConfiguration"])
    assert args["cloud-provider"] == "external"
    assert args["provider-id"] == f"{v.PROVIDER_ID_PREFIX}<id of dev-cp-0>"  # the mock server's id
    assert args["node-ip"] == init["InitConfiguration"]["localAPIEndpoint"]["advertiseAddress"]
    for node in ("dev-cp-1", "dev-cp-2", "dev-worker-0", "dev-worker-1"):
        join = _docs(unsecret(graph.named(f"{node}-kubeadm-join").inputs["stdin"]))["JoinConfiguration"]
        args = _kubelet_args(join)
        assert (args["cloud-provider"], args["provider-id"]) == ("external", f"openstack:///<id of {node}>"), node
        assert args["node-ip"].startswith("<fixed IP"), node


def test_controller_manager_runs_external_and_the_api_server_has_no_cloud_flag(graph):
    cluster = _docs(graph.named("dev-cp-0-kubeadm-init").plain("stdin"))["ClusterConfiguration"]
    assert cluster["controllerManager"]["extraArgs"] == [{"name": "cloud-provider", "value": "external"}]
    # kube-apiserver lost --cloud-provider in 1.33 ("unknown flag": kubernetes PR #130162)
    assert "cloud-provider" not in yaml.safe_dump(cluster["apiServer"])


def test_without_the_cloud_provider_kubeadm_renders_as_before():
    """A stack that keeps it off (every stack deployed before it) must see no change in its
    kubeadm configuration: a change would re-run init and every join on a live cluster."""
    g = run_program({"cloudProvider": False, "workerCount": 1})
    text = g.named("dev-cp-0-kubeadm-init").plain("stdin") + unsecret(
        g.named("dev-worker-0-kubeadm-join").inputs["stdin"])
    assert "cloud-provider" not in text and "provider-id" not in text and "controllerManager" not in text
    assert not _occm_creds(g) and not [r for r in g.of_type(RELEASE) if r.plain("chart") == v.CLOUD_PROVIDER_CHART]
    assert g.exports["cloudProvider"].value is False


# --- the credential, the Secret and the release ------------------------------------------------


def _occm_creds(g):
    return [r for r in g.of_type(APP_CRED) if "-occm-" in r.plain("name")]


def test_one_least_privilege_application_credential_per_component(graph):
    creds = {r.plain("name").split("-")[-3]: r for r in graph.of_type(APP_CRED)}
    assert sorted(creds) == ["csi", "occm"]
    for component, ac in creds.items():
        assert ac.plain("roles") == ["member"] and ac.plain("unrestricted") is False
        name = ac.plain("name")
        assert name.startswith(f"{graph.exports['cloudClusterName'].value}-{component}-1-"), name
        assert not ac.plain("expiresAt")


def test_new_roles_or_rotation_make_a_new_name():
    """Every argument forces a replacement and Keystone names are unique per user: the new
    credential (created before the old one is deleted) needs a new name."""
    names = {cred.credential_name(_cfg(**raw), "occm") for raw in (
        {}, {"cloudCredentialRotation": "2"}, {"cloudCredentialRoles": ["member", "load-balancer_member"]})}
    assert len(names) == 3


def test_cloud_conf_is_a_secret_built_from_the_credential_and_the_stack(graph):
    (secret,) = [s for s in graph.of_type(SECRET) if s.plain("metadata")["name"] == cc.SECRET_NAME]
    assert secret.plain("metadata")["namespace"] == "kube-system"
    data = secret.inputs["stringData"]
    assert data[SECRET_SIG] == SECRET_VALUE or data[cc.SECRET_KEY][SECRET_SIG] == SECRET_VALUE
    conf = configparser.ConfigParser()
    conf.read_string(unsecret(data)[cc.SECRET_KEY])
    g = {k: val.strip('"') for k, val in conf["Global"].items()}
    assert g == {"auth-url": "https://keystone.example.test:5000/v3", "region": "RegionOne",
                 "application-credential-id": "<id of cloud-credentials-controller>",
                 "application-credential-secret": "<application credential secret of cloud-credentials-controller>"}
    lb = {k: val.strip('"') for k, val in conf["LoadBalancer"].items()}
    assert lb["floating-network-id"] == "<id of network public>"
    assert lb["subnet-id"] == "<id of network-subnet>"
    assert lb["manage-security-groups"] == "false" and lb["create-monitor"] == "true"
    assert lb["monitor-delay"].endswith("s"), "durations need a unit (time.ParseDuration)"


def test_release_matches_the_minor_and_restarts_on_a_new_config(graph):
    rel = _release(graph, v.CLOUD_PROVIDER_CHART)
    assert rel.plain("version") == v.CLOUD_PROVIDER_CHARTS[v.DEFAULT_KUBERNETES_VERSION] == "2.36.0"
    assert rel.plain("namespace") == "kube-system"
    values = unsecret(rel.inputs["values"])
    assert values["secret"] == {"enabled": True, "create": False, "name": cc.SECRET_NAME}
    assert values["cluster"]["name"] == graph.exports["cloudClusterName"].value
    assert "route" not in values["enabledControllers"]
    assert len(values["podAnnotations"][cc.CONFIG_DIGEST_ANNOTATION]) == 64
    assert not rel.is_secret("values"), "the preview must show the release's values"
    # a rotation replaces the credential: a new id (and secret) -> a new digest -> new pods
    g2 = run_program({"controlPlaneCount": 3, "workerCount": 2, "cloudCredentialRotation": "2"},
                     fresh=["cloud-credentials-controller"])
    assert unsecret(_release(g2, v.CLOUD_PROVIDER_CHART).inputs["values"])["podAnnotations"] != values["podAnnotations"]


def test_the_controller_waits_for_the_operator_not_for_the_installation(graph):
    """calico-kube-controllers (in the Installation's Ready) waits for the controller to
    clear the uninitialized taint: the other way round would deadlock."""
    rel = _release(graph, v.CLOUD_PROVIDER_CHART)
    operator = _release(graph, "tigera-operator")
    (installation,) = graph.of_type("kubernetes:operator.tigera.io/v1:Installation")
    assert graph.depends_on(rel, operator)
    assert not graph.depends_on(rel, installation) and not graph.depends_on(installation, rel)
    secret = graph.named("kubernetes-cloud-controller-config")
    assert graph.depends_on(rel, secret)
    # the sample workloads schedule only on initialized nodes
    assert graph.depends_on(graph.named("kubernetes-samples-kata-app"), rel)


def test_the_cluster_name_differs_between_stacks_and_is_kept_once_deployed():
    a = naming.cloud_cluster_name("dev", "org/katak8s/dev")
    assert a != naming.cloud_cluster_name("dev", "org/other/dev") and a.startswith("dev-")
    kept = DeployedState({"cloudProvider": True, "cloudClusterName": "dev-0badc0de"}).settle(
        _cfg(), stack="org/katak8s/renamed")
    assert kept.cloud_cluster_name == "dev-0badc0de"


# --- deployed stacks ----------------------------------------------------------------------------


def test_a_stack_deployed_before_keeps_it_off_with_a_warning():
    g = run_program({"workerCount": 1}, deployed={"kubernetesVersion": v.KUBERNETES_PATCHES["1.36"],
                                                  "containerRuntime": "containerd",
                                                  "controlPlanePrivateIps": ["10.42.0.10"],
                                                  "workerPrivateIps": ["10.42.0.11"], "jumpHost": "dedicated"})
    assert g.exports["cloudProvider"].value is False
    assert not _occm_creds(g)
    assert any("cloudProvider stays off" in msg for _, msg in g.logs)


def test_unreadable_outputs_never_turn_a_running_controller_off():
    """Review finding 1: settling 'off' when the outputs can't be read would delete the
    controller, its credential and the NodePort rule of a stack deployed with it."""
    assert DeployedState({}, readable=False).settle(_cfg(), stack="o/p/s").cloud_provider is True
    from harness import UNREADABLE
    g = run_program({"workerCount": 1}, deployed={UNREADABLE: True})
    assert g.exports["cloudProvider"].value is True and _occm_creds(g)


@pytest.mark.parametrize("had,want", [(True, False), (False, True)])
def test_switching_it_on_a_deployed_cluster_is_refused(had, want):
    problems = refusals({"cloudProvider": had}, _cfg(cloudProvider=want), ssh_public_key=None)
    assert len(problems) == 1 and problems[0].startswith("katak8s:cloudProvider: cannot turn")
    assert refusals({"cloudProvider": had}, _cfg(cloudProvider=had), ssh_public_key=None) == []
    with pytest.raises(ConfigError, match="cloudProvider: cannot turn"):
        run_program({"cloudProvider": want}, deployed={"cloudProvider": had})


# --- the login ----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider,env,clouds,secure,found", [
    ({}, {}, None, None, None),
    ({"applicationCredentialId": "abc"}, {}, None, None, "openstack:applicationCredentialId"),
    ({}, {"OS_APPLICATION_CREDENTIAL_NAME": "ci"}, None, None, "OS_APPLICATION_CREDENTIAL_NAME"),
    # neither gophercloud/utils nor the provider reads OS_AUTH_TYPE: a leftover is no login
    ({}, {"OS_AUTH_TYPE": "v3applicationcredential"}, None, None, None),
    ({}, {"OS_CLOUD": "ci"}, {"clouds": {"ci": {"auth_type": "v3applicationcredential"}}}, None,
     "clouds.yaml cloud 'ci'"),
    ({"cloud": "ci"}, {}, {"clouds": {"ci": {"auth": {"application_credential_id": "x"}}}}, None,
     "clouds.yaml cloud 'ci'"),
    ({}, {"OS_CLOUD": "ci"}, {"clouds": {"ci": {"auth": {"username": "u", "password": "p"}}}}, None, None),
    # secure.yaml's values merge into the cloud's entry
    ({}, {"OS_CLOUD": "ci"}, {"clouds": {"ci": {"auth": {"auth_url": "https://k"}}}},
     {"clouds": {"ci": {"auth": {"application_credential_id": "x"}}}}, "clouds.yaml cloud 'ci'"),
    # with a named cloud the provider's own applicationCredentialId is not used
    ({"cloud": "ci", "applicationCredentialId": "abc"}, {}, {"clouds": {"ci": {"auth": {"username": "u"}}}}, None,
     None),
])
def test_an_application_credential_login_is_recognised(provider, env, clouds, secure, found):
    entry = login.cloud_entry(provider.get("cloud") or env.get("OS_CLOUD"), clouds, secure)
    assert login.application_credential_login(provider, env, entry) == found


def test_the_logins_own_ca_reaches_both_secrets(tmp_path, monkeypatch):
    """Review finding 2: a Keystone with a private CA works for Pulumi but not for OCCM,
    which trusts only cloud.conf's ca-file."""
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    (tmp_path / "ca.pem").write_text(pem)
    monkeypatch.setenv("OS_CACERT", str(tmp_path / "ca.pem"))
    g = run_program({"workerCount": 1})
    for name in ("kubernetes-cloud-controller-config", "kubernetes-cinder-csi-config"):
        data = unsecret(g.named(name).inputs["stringData"])
        assert data["ca.crt"] == pem and 'ca-file="/etc/config/ca.crt"' in data["cloud.conf"], name
    monkeypatch.setenv("OS_CACERT", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="cannot read .*missing.pem"):
        run_program({"workerCount": 1})
    monkeypatch.setenv("OS_CACERT", pem)  # the PEM itself, which the provider accepts too
    data = unsecret(run_program({"workerCount": 1}).named("kubernetes-cinder-csi-config").inputs["stringData"])
    assert data["ca.crt"] == pem
    monkeypatch.delenv("OS_CACERT")
    data = unsecret(run_program({"workerCount": 1}).named("kubernetes-cloud-controller-config").inputs["stringData"])
    assert "ca.crt" not in data and "ca-file" not in data["cloud.conf"]


def test_a_restricted_application_credential_login_fails_preview(monkeypatch):
    monkeypatch.setenv("OS_APPLICATION_CREDENTIAL_ID", "0123")
    with pytest.raises(ConfigError, match="loginCredentialUnrestricted") as err:
        run_program(preview=True)
    assert not [r for r in err.value.graph if r.custom], "refused before any resource"
    assert run_program({"loginCredentialUnrestricted": True}, preview=True).of_type(APP_CRED)
    assert not run_program({"cloudProvider": False, "cinderCsi": False}, preview=True).of_type(APP_CRED)
    with pytest.raises(ConfigError, match="loginCredentialUnrestricted"):
        run_program({"cloudProvider": False}, preview=True)  # Cinder CSI's credential


def test_cloud_auth_takes_the_public_identity_endpoint_of_the_region():
    from pulumi_openstack.identity import outputs as typed

    ep = [{"interface": "public", "region": "r2", "regionId": "r2", "url": "https://k2/identity"},
          {"interface": "public", "region": "r1", "regionId": "r1", "url": "https://k1:5000/v3/"}]
    assert cred.cloud_auth([{"type": "identity", "endpoints": ep}], "r2").auth_url == "https://k2/identity/v3"
    assert cred.cloud_auth([{"type": "identity", "endpoints": ep}], "r1").auth_url == "https://k1:5000/v3"
    with pytest.raises(ConfigError, match="no public identity endpoint"):
        cred.cloud_auth([{"type": "compute", "endpoints": ep}], "r1")
    with pytest.raises(ConfigError, match="several regions"):
        cred.cloud_auth([{"type": "identity", "endpoints": ep}], "")
    # what the SDK delivers: typed results keyed by Python names
    item = typed.GetAuthScopeServiceCatalogResult(id="c", name="keystone", type="identity", endpoints=[
        typed.GetAuthScopeServiceCatalogEndpointResult(id="e", interface="public", region="", region_id="r9",
                                                       url="https://k9/v2.0")])
    assert cred.cloud_auth([item], "r9").auth_url == "https://k9/v3"


# --- config -------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw,message", [
    ({"cloudCredentialRoles": []}, "cloudCredentialRoles: must name at least one"),
    ({"cloudCredentialRoles": ["member", "member"]}, "must not repeat"),
    ({"cloudCredentialRoles": ["me mber"]}, r"cloudCredentialRoles\[0\]: must be a Keystone role"),
    ({"cloudCredentialRotation": "Two"}, "cloudCredentialRotation: must be 1 to 16"),
])
def test_bad_credential_config_is_named(raw, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(**raw)


def test_cloud_conf_quotes_values_and_refuses_line_breaks():
    conf = cc.CloudConf(auth_url="https://k/v3", region="", credential_id="i", credential_secret='a"b\\c',
                        floating_network_id="f", subnet_id="s")
    text = cc.render_cloud_conf(conf)
    assert 'application-credential-secret="a\\"b\\\\c"' in text and "region" not in text
    assert 'a"b' not in repr(conf)
    with pytest.raises(ValueError, match="one line"):
        cc.render_cloud_conf(cc.CloudConf(auth_url="https://k/v3\n[Global]", region="", credential_id="i",
                                          floating_network_id="f", subnet_id="s"))


# --- the destroy guard (lifecycle model: tests/engine_model.py) ---------------------------------

GUARD = "dev-cp-0-cloud-cleanup"


def test_destroy_releases_load_balancers_before_the_controller_the_servers_and_the_network():
    from engine_model import simulate

    old = run_program({"workerCount": 2, "controlPlaneCount": 3})
    steps, _ = simulate(old, lambda fresh: None)
    order = [s.name for s in steps]
    (guard,) = [s for s in steps if s.name == GUARD]
    assert guard.op == "delete" and not guard.skipped, "the guard's delete must run at destroy"
    assert "MODE='release'" in guard.reg.plain("delete") or "MODE=release" in guard.reg.plain("delete")
    later = [s for s in steps if s.reg.type in (
        "openstack:compute/instance:Instance", "openstack:networking/subnet:Subnet",
        "openstack:networking/routerInterface:RouterInterface", "openstack:networking/network:Network",
        "openstack:networking/secGroupRule:SecGroupRule", "openstack:loadbalancer/listener:Listener",
        "openstack:loadbalancer/pool:Pool", "openstack:loadbalancer/member:Member",
        "openstack:loadbalancer/monitor:Monitor", "kubernetes:operator.tigera.io/v1:Installation",
        APP_CRED, RELEASE, SECRET)
        # metrics-server and the approver serve nothing the guard's release needs, and a guard
        # waiting for them would not exist when their first install fails.
        and "-metrics-" not in s.name]
    assert len(later) > 40
    for s in later:
        assert order.index(GUARD) < order.index(s.name), f"{s.name} is deleted before the load balancers are"
        # a dependency, not an accident of the engine's layering: `--continue-on-error` spares
        # only the failed step's dependencies (review of 476c54c, finding 2)
        assert old.depends_on(guard.reg, s.reg), f"the guard does not depend on {s.name}"


def test_the_guard_runs_nothing_outside_destroy():
    """Scale in and out, a no-op re-run: the guard is never deleted or replaced (edits of the
    shared scripts: test_lifecycle_scenarios.py, which counts it among the destructive deletes)."""
    from engine_model import simulate

    old = run_program({"workerCount": 2})
    for after in ({"workerCount": 2}, {"workerCount": 1}, {"workerCount": 3}):
        steps, _ = simulate(old, lambda fresh, a=after: run_program(a, deployed=old, fresh=fresh))
        assert not [s for s in steps if s.name == GUARD], after


def test_no_setting_removes_or_replaces_the_guard():
    """Removing or replacing it would run its release on a live cluster (delete LoadBalancer
    Services, and with deleteVolumesOnDestroy every PVC): it exists whatever the settings, and
    its trigger is a constant, so a change of them updates it in place."""
    from engine_model import simulate

    old = run_program({"workerCount": 1, "cloudProvider": False}, deployed={"cloudProvider": False})
    for after in ({"cinderCsi": False}, {"deleteVolumesOnDestroy": True}, {"cinderCsi": False, "clusterName": "dev"}):
        cfg = {"workerCount": 1, "cloudProvider": False, **after}
        steps, _ = simulate(old, lambda fresh, c=cfg: run_program(c, deployed={"cloudProvider": False}, fresh=fresh))
        ops = {s.op for s in steps if s.name == GUARD}
        assert ops <= {"update"}, (after, ops)


def test_nothing_that_schedules_starts_before_every_node_is_initialized(graph):
    """Review finding 3: helm's readiness of the controller's DaemonSet passes while the nodes
    are NotReady (it desires no pod then), so a command on cp-0 waits for the taint to clear
    on every registered node; the samples wait for it. It does not wait for the joins (the
    control planes' serial joins would land on every path)."""
    init = graph.named("dev-cp-0-cloud-initialized")
    rel = _release(graph, v.CLOUD_PROVIDER_CHART)
    assert graph.depends_on(init, rel)
    assert not graph.depends_on(init, graph.named("dev-cp-0-membership-dev-cp-1"))
    assert graph.depends_on(graph.named("kubernetes-samples-kata-app"), init)



def test_the_sample_load_balancer_is_open_to_allowed_cidrs_and_admitted_by_policy():
    g = run_program({"workerCount": 2, "sampleLoadBalancer": True, "allowedCidrs": ["198.51.100.0/24"]})
    svc = g.named("kubernetes-samples-kata-app-public")
    spec = svc.plain("spec")
    assert spec["type"] == "LoadBalancer" and spec["externalTrafficPolicy"] == "Local"
    assert spec["loadBalancerSourceRanges"] == ["198.51.100.0/24"]
    assert spec["selector"] == {"app": "kata-app"}
    policy = g.named("kubernetes-policies-kata-app-ingress-from-load-balancer").plain("spec")
    assert policy["ingress"] == [{"from": [{"ipBlock": {"cidr": "10.42.0.0/24"}}],
                                  "ports": [{"protocol": "TCP", "port": 8080}]}]
    # off by default, and refused without the cloud controller
    assert not [r for r in run_program({"workerCount": 2}) if r.name.endswith("kata-app-public")]
    with pytest.raises(ConfigError, match="sampleLoadBalancer: needs cloudProvider and sampleWorkloads"):
        run_program({"sampleLoadBalancer": True, "cloudProvider": False})


@pytest.mark.parametrize("minor", sorted(v.KUBERNETES_PATCHES))
def test_the_sample_load_balancer_objects_validate_strictly(minor):
    import kubernetes_validate
    from test_kubernetes_program import schema_version

    from components.kubernetes import policies, samples

    for m in (samples.public_service(_cfg(sampleLoadBalancer=True)), policies.load_balancer_policy("10.42.0.0/24")):
        assert kubernetes_validate.validate(m, schema_version(minor), strict=True) == minor, m["kind"]
