"""Cinder CSI (issue #17 §3): its credential and Secret, the chart of the minor, the default
StorageClass, its order, the outputs, and the destroy guard's volume handling."""

from __future__ import annotations

import configparser

import pytest
from harness import SECRET_SIG, SECRET_VALUE, run_program, unsecret

from components import versions as v
from components.kubernetes import storage

RELEASE = "kubernetes:helm.sh/v3:Release"
CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"


@pytest.fixture(scope="module")
def graph():
    return run_program({"workerCount": 1})


def _release(g, chart):
    (rel,) = [r for r in g.of_type(RELEASE) if r.plain("chart") == chart]
    return rel


@pytest.mark.parametrize("minor", sorted(v.KUBERNETES_MINORS))
def test_the_chart_of_the_minor_with_the_programs_secret_and_no_chart_classes(minor):
    g = run_program({"kubernetesVersion": minor, "workerCount": 1})
    rel = _release(g, v.CINDER_CSI_CHART)
    assert rel.plain("version") == v.CINDER_CSI_CHARTS[minor] and rel.plain("namespace") == "kube-system"
    assert rel.plain("repositoryOpts") == {"repo": v.CLOUD_PROVIDER_CHART_REPO}
    values = unsecret(rel.inputs["values"])
    assert values["secret"] == {"enabled": True, "create": False, "hostMount": False,
                                "name": storage.SECRET_NAME, "filename": "cloud.conf"}
    assert values["storageClass"] == {"enabled": False}
    assert values["clusterID"] == g.exports["cloudClusterName"].value
    controller = values["csi"]["plugin"]["controllerPlugin"]
    assert controller["nodeSelector"] == {v.CONTROL_PLANE_ROLE: ""}
    assert not rel.is_secret("values")


def test_one_default_class_that_waits_for_the_pod_deletes_and_expands(graph):
    (sc,) = graph.of_type(CLASS)
    assert sc.plain("metadata") == {"name": "cinder",
                                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}
    assert (sc.plain("provisioner"), sc.plain("reclaimPolicy"), sc.plain("volumeBindingMode"),
            sc.plain("allowVolumeExpansion")) == ("cinder.csi.openstack.org", "Delete", "WaitForFirstConsumer", True)
    assert graph.exports["defaultStorageClass"].value == "cinder"


def test_its_own_credential_in_its_own_secret(graph):
    secret = graph.named("kubernetes-cinder-csi-config")
    assert secret.plain("metadata")["name"] == storage.SECRET_NAME
    data = secret.inputs["stringData"]
    assert data[SECRET_SIG] == SECRET_VALUE or data["cloud.conf"][SECRET_SIG] == SECRET_VALUE
    conf = configparser.ConfigParser()
    conf.read_string(unsecret(data)["cloud.conf"])
    assert conf["Global"]["application-credential-id"].strip('"') == "<id of cloud-credentials-csi>"
    assert "LoadBalancer" not in conf


def test_it_installs_beside_the_cloud_controller_and_the_guard_waits_for_it(graph):
    """Its controller pod schedules once a control plane is initialized: its release's wait
    (longer than the controller's own bounded wait, which reports first) covers that."""
    from components.kubernetes import cloud_controller

    csi = _release(graph, v.CINDER_CSI_CHART)
    occm = _release(graph, v.CLOUD_PROVIDER_CHART)
    operator = _release(graph, "tigera-operator")
    assert graph.depends_on(csi, operator) and not graph.depends_on(csi, occm)
    assert csi.plain("timeout") > cloud_controller.INIT_TIMEOUT
    guard = graph.named("dev-cp-0-cloud-cleanup")
    assert graph.depends_on(guard, csi) and graph.depends_on(guard, occm)


def test_without_the_cloud_provider_it_waits_for_calico():
    g = run_program({"cloudProvider": False, "workerCount": 1})
    csi = _release(g, v.CINDER_CSI_CHART)
    (installation,) = g.of_type("kubernetes:operator.tigera.io/v1:Installation")
    assert g.depends_on(csi, installation)


def test_turned_off_nothing_of_it_and_the_output_says_so():
    g = run_program({"cinderCsi": False, "workerCount": 1})
    assert not g.of_type(CLASS) and not [r for r in g.of_type(RELEASE) if r.plain("chart") == v.CINDER_CSI_CHART]
    assert g.exports["defaultStorageClass"].value == ""
    assert not [r for r in g.of_type("openstack:identity/applicationCredential:ApplicationCredential")
                if "-csi-" in r.plain("name")]


@pytest.mark.parametrize("keep", [True, False])
def test_the_guard_deletes_volumes_only_when_asked(keep):
    g = run_program({"workerCount": 1, "deleteVolumesOnDestroy": not keep})
    delete = g.named("dev-cp-0-cloud-cleanup").plain("delete")
    assert "CINDER_CSI='true'" in delete or "CINDER_CSI=true" in delete
    want = str(not keep).lower()
    assert f"DELETE_VOLUMES='{want}'" in delete or f"DELETE_VOLUMES={want}" in delete


def test_turning_it_off_on_a_deployed_cluster_is_refused_at_preview():
    """Review finding 4: without the driver, attached volumes can't be unstaged or detached."""
    from components.config import ConfigError

    with pytest.raises(ConfigError, match="cinderCsi: cannot turn Cinder CSI off"):
        run_program({"cinderCsi": False}, deployed={"defaultStorageClass": "cinder", "cloudProvider": True})
    # a stack deployed without it (no class recorded) may keep it off
    assert run_program({"cinderCsi": False}, deployed={"defaultStorageClass": "", "cloudProvider": True})
