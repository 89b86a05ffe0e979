"""katak8s: an OpenStack project -> a kubeadm cluster whose workloads run in Kata VMs.

Read top to bottom; each line is one concern, in the order `pulumi up` builds them.
"""

from components.cluster import KubeadmCluster
from components.config import load_config
from components.deployed import DeployedState
from components.kubernetes import KubernetesAddons
from components.nodes.bootstrap import NodeBootstrap
from components.openstack.access import SshAccess
from components.openstack.credentials import CloudCredentials
from components.openstack.endpoint import ApiEndpoint, require_octavia
from components.openstack.login import check_login
from components.openstack.network import ClusterNetwork
from components.openstack.nodes import NodePool
from components.outputs import export_outputs
from components.tuning import tune_gc

tune_gc()  # large stacks evaluate ~1.5x faster (components/tuning.py)

# 0. Validate every config key before a single resource is declared.
cfg = load_config()
require_octavia(cfg)  # 3 or 5 control planes need Octavia: known at preview, before any server

# 1. OpenStack: SSH keys, network + security groups, the SSH jump host and the servers,
#    the API endpoint, the cloud controller's and Cinder CSI's application credentials.
#    Nothing is created before the change is checked against what the last `up` deployed.
deployed = DeployedState.read()
cfg = deployed.settle(cfg)  # what a deployed stack fixes: the cloud controller on or off
login = check_login(cfg)  # a restricted application credential can't make credentials; the CA
access = SshAccess("access", cfg, deployed=deployed)
network = ClusterNetwork("network", cfg)
nodes = NodePool("nodes", cfg, network=network, access=access, jump_host=deployed.jump_host(cfg))
endpoint = ApiEndpoint("endpoint", cfg, network=network, nodes=nodes)
credentials = CloudCredentials("cloud-credentials", cfg, ca_cert=login.ca_cert) if cfg.cloud_credentials else None

# 2. Nodes over SSH: preflight, kernel, runtime, Kata, kube packages (all nodes in
#    parallel), then kubeadm init on the first control plane and joins; a new
#    kubernetesVersion upgrades the nodes in place, one (batch) at a time.
bootstrap = NodeBootstrap("bootstrap", cfg, nodes=nodes)
cluster = KubeadmCluster("cluster", cfg, nodes=nodes, bootstrap=bootstrap, endpoint=endpoint,
                         deployed=deployed)

# 3. Kubernetes: Calico, the OpenStack cloud controller, Cinder CSI, metrics-server, the
#    kata RuntimeClass, NetworkPolicies, sample workloads.
addons = KubernetesAddons("kubernetes", cfg, cluster=cluster, network=network, nodes=nodes,
                          credentials=credentials)

# The outputs contract other stacks read through StackReference (README, "Outputs").
export_outputs(cfg, access=access, network=network, endpoint=endpoint, nodes=nodes,
               cluster=cluster, addons=addons)
