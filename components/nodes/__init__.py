"""Stage 2: each node over SSH, phase by phase (bootstrap), through the phase runner.
Builds on the OpenStack stage (components.openstack.target.NodeTarget), never the reverse."""
