"""The node-side scripts, shipped to each node once: one CopyToRemote of scripts/remote.

Why one copy per node instead of one per phase (issue #15): each phase used to carry a
self-contained bundle (parameters + libraries + script, ~30 KB) in a CopyToRemote text
asset, which the state stores, twice, for every phase of every node: 60 MB of inputs at
3+200, and two SSH steps per phase. A FileArchive's state entry is its path and its hash
(pulumi/pulumi sdk/go/common/resource/archive/archive.go: a path archive serializes
`path` and `hash`, never the files), so the scripts cost a few hundred bytes per node, and
each phase is one Command (components/nodes/phase.py).

The copy lands in `<home>/scripts/<version>/remote/`, where <version> is a digest of every
file: a new version is a new directory (the CopyToRemote updates because its remotePath
changes, pulumi-command copyController.go Update `needCopy`), and old ones stay, so a delete
saved in the state long ago still finds the exact files it names (scripts/remote/launch.sh).
pulumi-command 1.2.1 copies a directory source without a trailing slash into
`<remotePath>/<its base name>` (copyController.go sftpCopy), hence the `remote/` level; it
never deletes what it copied (CopyToRemote has no Delete), and a new server gets a new copy
(replace_with). The provider opens the path relative to its working directory, which the
engine sets to the program's (sdk/go/common/resource/plugin/plugin.go newPlugin, `cmd.Dir =
pwd`), so the path is relative to the project: the state stays the same from any checkout.
"""

from __future__ import annotations

import functools
import hashlib
import os

import pulumi
import pulumi_command as command

from components.nodes.phase import DEFAULT_HOME, SCRIPTS_DIR
from components.openstack.target import NodeTarget

VERSION_CHARS = 16


@functools.lru_cache(maxsize=None)
def version() -> str:
    """A digest of every file under scripts/remote (names and contents)."""
    h = hashlib.sha256()
    for path in sorted(p for p in SCRIPTS_DIR.rglob("*") if p.is_file()):
        h.update(path.relative_to(SCRIPTS_DIR).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:VERSION_CHARS]


def source_path() -> str:
    """scripts/remote relative to the working directory (the project's under `pulumi up`)."""
    return os.path.relpath(SCRIPTS_DIR, os.getcwd())


def remote_dir(home: str = DEFAULT_HOME) -> str:
    """Where the current version lands under a node's katak8s home."""
    return f"{home}/scripts/{version()}"


def ship(parent: pulumi.Resource, target: NodeTarget) -> command.remote.CopyToRemote:
    """`<node>-scripts`: scripts/remote on `target`, before any of its commands."""
    return command.remote.CopyToRemote(
        f"{target.name}-scripts",
        connection=target.connection,
        source=pulumi.FileArchive(source_path()),
        remote_path=remote_dir(target.remote_dir),
        opts=pulumi.ResourceOptions(parent=parent, replace_with=[target.server]),
    )
