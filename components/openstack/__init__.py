"""Stage 1: the OpenStack resources (network, security groups, servers, API endpoint) and
how to reach each server (target.NodeTarget). Builds on nothing but the config."""
