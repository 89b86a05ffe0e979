#!/usr/bin/env python3
"""Compare two offline plans (directories written by scripts/plan.py) for a PR review.

    plan_diff.py BASE HEAD [--summary FILE] [--diff FILE] [--title T] [--artifact-url URL] [--note TEXT]

Prints a markdown summary (or writes it to --summary): resources added, removed and
changed (their inputs differ), node scripts changed per node and phase, and every other
rendered file (cloud-init, kubeadm, Kubernetes objects) that changed. The unified diff of
every file goes to --diff, which the plan-review workflow uploads as an artifact.

The summary's first line is MARKER, which the workflow uses to find and update its one
sticky comment instead of adding a new one per push. Output is deterministic (sorted),
so re-running on the same plans yields the same comment and the update is a no-op.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "<!-- katak8s-plan-review -->"
RESOURCES = "resources.txt"
GRAPH_FILE = "graph.json"
INPUTS_DIR = "inputs"
NODES_DIR = "nodes"
# Tables longer than this are cut; the artifact has everything. GitHub rejects comments
# over 65536 characters, so the summary is also capped as a whole.
MAX_ROWS = 40
MAX_SUMMARY_CHARS = 60000


@dataclass
class PlanDiff:
    added: list[tuple[str, ...]] = field(default_factory=list)
    removed: list[tuple[str, ...]] = field(default_factory=list)
    changed: list[tuple[str, list[str]]] = field(default_factory=list)  # (inputs file stem, keys)
    nodes: list[tuple[str, str, str]] = field(default_factory=list)  # (node, phase(s), change)
    files: list[tuple[str, str]] = field(default_factory=list)  # (path, change) outside nodes/ inputs/
    diff: str = ""

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.nodes or self.files)


def _files(root: Path) -> dict[str, str]:
    """Every file below `root` as {relative posix path: text}."""
    if not root.is_dir():
        return {}
    # graph.json is the engine model's input (scripts/operations.py), not a reviewed artifact.
    return {p.relative_to(root).as_posix(): p.read_text(errors="replace")
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != GRAPH_FILE}


def _resource_rows(text: str | None) -> set[tuple[str, ...]]:
    """resources.txt lines -> (type, name, parent) tuples; tab-separated when tabs are used."""
    rows = set()
    for line in (text or "").splitlines():
        if line.strip():
            parts = line.split("\t") if "\t" in line else line.split(None, 2)
            rows.add(tuple(p.strip() for p in parts))
    return rows


def _counts(old: str, new: str) -> str:
    plus = minus = 0
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            plus += 1
        elif line.startswith("-") and not line.startswith("---"):
            minus += 1
    return f"+{plus} −{minus}"


def _changed_keys(old: str, new: str) -> list[str]:
    """Top-level input keys that differ (of the `inputs` object when the file wraps one)."""
    try:
        a, b = json.loads(old), json.loads(new)
    except ValueError:
        return []
    if isinstance(a, dict) and isinstance(b, dict) and isinstance(a.get("inputs"), dict) \
            and isinstance(b.get("inputs"), dict):
        a, b = a["inputs"], b["inputs"]
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return []
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _node_rows(base: dict[str, str], head: dict[str, str]) -> list[tuple[str, str, str]]:
    def by_node(files: dict[str, str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for path, text in files.items():
            parts = path.split("/")
            if len(parts) == 3 and parts[0] == NODES_DIR:
                out.setdefault(parts[1], {})[parts[2]] = text
        return out

    old, new = by_node(base), by_node(head)
    rows = []
    for node in sorted(set(old) | set(new)):
        if node not in old:  # scale-out: one row per node, not one per phase
            rows.append((node, _phases(new[node]), "new node"))
        elif node not in new:
            rows.append((node, _phases(old[node]), "node removed"))
        else:
            for name in sorted(set(old[node]) | set(new[node])):
                phase = name.rsplit(".", 1)[0]
                if name not in old[node]:
                    rows.append((node, phase, "added"))
                elif name not in new[node]:
                    rows.append((node, phase, "removed"))
                elif old[node][name] != new[node][name]:
                    rows.append((node, phase, f"changed ({_counts(old[node][name], new[node][name])})"))
    return rows


def _phases(files: dict[str, str]) -> str:
    return ", ".join(sorted(name.rsplit(".", 1)[0] for name in files))


def compare(base_dir: Path, head_dir: Path) -> PlanDiff:
    base, head = _files(base_dir), _files(head_dir)
    result = PlanDiff()
    old_rows, new_rows = _resource_rows(base.get(RESOURCES)), _resource_rows(head.get(RESOURCES))
    result.added = sorted(new_rows - old_rows)
    result.removed = sorted(old_rows - new_rows)
    result.nodes = _node_rows(base, head)
    chunks = []
    for path in sorted(set(base) | set(head)):
        old, new = base.get(path), head.get(path)
        if old == new:
            continue
        top = path.split("/", 1)[0]
        if top == INPUTS_DIR and old is not None and new is not None:
            result.changed.append((Path(path).stem, _changed_keys(old, new)))
        elif top not in (INPUTS_DIR, NODES_DIR) and path != RESOURCES:
            change = "added" if old is None else "removed" if new is None else "changed"
            result.files.append((path, f"{change} ({_counts(old or '', new or '')})"))
        chunks.extend(difflib.unified_diff(
            (old or "").splitlines(keepends=True), (new or "").splitlines(keepends=True),
            fromfile=f"base/{path}" if old is not None else "/dev/null",
            tofile=f"head/{path}" if new is not None else "/dev/null"))
    result.diff = "".join(c if c.endswith("\n") else c + "\n\\ No newline at end of file\n" for c in chunks)
    return result


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: Iterable[str], rows: list[tuple[str, ...]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        lines.append(f"\n… and {len(rows) - MAX_ROWS} more (see the full diff artifact).")
    return lines + [""]


def _code(text: str) -> str:
    return f"`{text}`" if text else "—"


def render_summary(d: PlanDiff, *, title: str = "Offline plan review", artifact_url: str = "",
                   notes: Iterable[str] = ()) -> str:
    notes = list(notes)
    out = [MARKER, f"### {title}", ""]
    out += [f"> {note}" for note in notes] + ([""] if notes else [])
    if d.empty:
        out.append("No differences: this change renders the same resources, node scripts and files.")
    else:
        out.append(f"**{len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed** "
                   "resources · "
                   f"**{len(d.nodes)}** node script changes · **{len(d.files)}** other rendered files")
        out.append("")
    if d.added or d.removed:
        rows = [("➕ added", *map(_code, r)) for r in d.added]
        rows += [("➖ removed", *map(_code, r)) for r in d.removed]
        width = max(len(r) for r in rows)
        rows = [r + ("—",) * (width - len(r)) for r in rows]
        out += ["#### Resources added and removed", ""]
        out += _table(["", "type", "name", "parent", *[""] * (width - 4)], rows)
    if d.changed:
        out += ["#### Resources whose inputs changed", ""]
        out += _table(["resource", "inputs"],
                      [(_code(n), ", ".join(map(_code, k)) or "—") for n, k in d.changed])
    if d.nodes:
        out += ["#### Node scripts", ""]
        out += _table(["node", "phase", "change"], [(_code(n), p, c) for n, p, c in d.nodes])
    if d.files:
        out += ["#### Other rendered files", ""]
        out += _table(["file", "change"], [(_code(p), c) for p, c in d.files])
    if artifact_url and not d.empty:
        out.append(f"Full diff: the `plan-review` artifact of [this run]({artifact_url}).")
    text = "\n".join(out).rstrip() + "\n"
    if len(text) > MAX_SUMMARY_CHARS:
        text = text[:MAX_SUMMARY_CHARS].rsplit("\n", 1)[0]
        text += "\n\n… summary cut; see the full diff artifact.\n"
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", type=Path, help="plan directory of the base branch")
    ap.add_argument("head", type=Path, help="plan directory of the pull request")
    ap.add_argument("--summary", type=Path, help="write the markdown summary here instead of stdout")
    ap.add_argument("--diff", type=Path, help="write the full unified diff here")
    ap.add_argument("--title", default="Offline plan review")
    ap.add_argument("--artifact-url", default="", help="link to the run that holds the diff artifact")
    ap.add_argument("--note", action="append", default=[], help="a line quoted above the summary")
    args = ap.parse_args(argv)
    for d in (args.base, args.head):
        if not d.is_dir():
            ap.error(f"{d} is not a directory (render it with scripts/plan.py --out {d})")
    result = compare(args.base, args.head)
    summary = render_summary(result, title=args.title, artifact_url=args.artifact_url, notes=args.note)
    if args.diff:
        args.diff.write_text(result.diff)
    if args.summary:
        args.summary.write_text(summary)
    else:
        sys.stdout.write(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
