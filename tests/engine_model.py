"""A small model of the Pulumi engine's step order, for the lifecycle scenarios and the
operation plan (scripts/operations.py).

`plan_steps(before, after)` takes the resource graph evaluated under two configurations
(tests/harness.py Graph; `before=None` is a fresh stack, `after=None` is `pulumi destroy`)
and returns the steps `pulumi up` would take, in an order the engine may execute them.
Every rule names its upstream source. Read at pulumi/pulumi 1b5949891b (3.260.0-dev),
pulumi-command v1.2.1 (7f3eb6f3) with pulumi-go-provider v1.3.0, and
terraform-provider-openstack 27f26125 (schemas equal to v3.4.0):

  E1 step_generator.go continueStepsFromImport L1267 processIgnoreChanges: ignored inputs
     take their OLD values before Check and Diff, so they never cause a change. A
     replacement is checked again against the program's values (L1325 for `--replace`,
     L2003-2022 otherwise): the new copy gets the new values of ignored inputs too.
  E2 step_generator.go diff L2884-2971, first match wins: --replace (L2891); a replace_with
     target being replaced (L2896-2905); the deleted_with target being replaced (L2909-2917,
     pulumi/pulumi#23818); a component never replaces (L2936-2941); else the provider's Diff.
  E3 step_generator.go applyReplaceOnChanges L3197-3224: a changed key under a
     replace_on_changes path (`triggers[*]`) is a replace.
  E4 step_generator.go continueStepsFromDiff L2043-2156, delete-before-replace: at the
     replaced resource's registration the engine deletes, in this order, the direct
     replace_with / deleted_with cascade (findDependentCascadeReplacements L3419-3443,
     appended last to `toReplace`, deleted first by the reverse loop L2082, in an order the
     engine leaves to Go map iteration L3427-3441: the model cannot order them, so
     test_lifecycle_scenarios keeps every delete script out of that cascade), then the
     dependents that must be replaced in REVERSE state order (calculateDependentReplacements
     L3268-3415), then the resource itself, then creates the replacement.
  E5 calculateDependentReplacements: candidates are every transitive dependent in the old
     state (dependency_graph.go DependingOn L55-120: depends_on, property, deleted_with,
     replace_with edges) not yet registered; one is replaced when its deleted_with target
     is (L3320), or when the provider's Diff, with every input that has a property
     dependency on a replaced resource made unknown, says replace (L3327-3381). A plain
     depends_on edge never replaces.
  E6 step_generator.go L2159-2165: create-before-delete (the default) creates the
     replacement now; the old copy is deleted after the program, with the removed resources.
  E7 step_generator.go ScheduleDeletes L2747-2796: deletes run after the program, in
     reverse dependency order (antichains over dependencies, property deps, deleted_with,
     replace_with, parent).
  E8 step.go DeleteStep.Apply L663 + isDeletedWith L603-612: a delete whose DIRECT
     deleted_with target is also deleted in this operation runs nothing (still leaves state).
  C1 (tests/provider_rules.py) only `triggers` replaces a Command or CopyToRemote.
  C2 pulumi-command commandController.go Update L63-83: an update runs `update`, else
     `create` again; Delete L86-92 runs the `delete` saved in state, nothing if unset.
  C3 copyController.go L137-154: an update copies only when `source` or `remotePath` changed.
  O1 (tests/provider_rules.py) the OpenStack provider's ForceNew arguments replace; every
     other change is an in-place update (an Instance's flavor resizes, its image rebuilds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness import Graph, Registration
from provider_rules import provider_replace_keys


@dataclass
class Step:
    op: str  # create | update | replace | delete
    reg: Registration
    delete_first: bool = False  # a replace that deletes the old copy first (E4)
    skipped: bool = False  # a delete that runs nothing (E8)
    keys: tuple[str, ...] = ()  # changed inputs, or why it is replaced
    cause: str = ""  # the resource whose replacement cascaded here

    @property
    def name(self) -> str:
        return self.reg.name


@dataclass
class _State:
    before: dict[str, Registration]
    after: dict[str, Registration]
    targets: set[str]
    steps: list[Step] = field(default_factory=list)
    replaced: set[str] = field(default_factory=set)  # sg.replaces
    deleted: set[str] = field(default_factory=set)  # sg.deletes
    registered: set[str] = field(default_factory=set)
    end_deletes: list[Registration] = field(default_factory=list)


def _edges(reg: Registration, *, parent: bool = False) -> set[str]:
    out = set(reg.dependencies) | {u for deps in reg.property_dependencies.values() for u in deps}
    out |= set(reg.replace_with) | ({reg.deleted_with} if reg.deleted_with else set())
    if reg.provider:
        out.add(reg.provider.rsplit("::", 1)[0])
    if parent and reg.parent:
        out.add(reg.parent)
    return out


def _changed(state: _State, old: Registration, new: Registration) -> set[str]:
    ignored = set(new.ignore_changes)  # E1: ignored keys keep their old values
    keys = {k for k in set(old.inputs) | set(new.inputs)
            if k not in ignored and old.inputs.get(k) != new.inputs.get(k)}
    return keys  # new outputs of replaced / re-run resources reach `new` through simulate()


def _requires_replacement(state: _State, reg: Registration, replace_set: set[str]) -> bool:
    """E5 for one candidate, judged on its OLD state."""
    if not reg.custom:
        return False
    if reg.deleted_with and reg.deleted_with in replace_set:
        return True
    unknown = {k for k, deps in reg.property_dependencies.items() if set(deps) & replace_set}
    unknown -= set(reg.ignore_changes)
    return bool(unknown) and bool(provider_replace_keys(reg, unknown))


def _delete_before_replace(state: _State, old: Registration) -> None:
    """E4 + E5 at the replaced resource's registration."""
    order = list(state.before)
    start = order.index(old.urn)
    dependent_set, replace_set, to_replace = {old.urn}, {old.urn}, []
    for urn in order[start + 1:]:  # DependingOn: linear scan of the state after `old`
        cand = state.before[urn]
        if urn in state.registered or not (_edges(cand) & dependent_set):
            continue
        dependent_set.add(urn)
        if _requires_replacement(state, cand, replace_set):
            replace_set.add(urn)
            to_replace.append(cand)
    seen: set[str] = set()
    for pool in (state.after, state.before):  # news, then olds
        for reg in pool.values():
            if reg.urn not in seen and (old.urn in reg.replace_with or reg.deleted_with == old.urn):
                seen.add(reg.urn)
                to_replace.append(state.before.get(reg.urn, reg))
    chain = []
    for dep in reversed(to_replace):
        if dep.urn in state.deleted or dep.urn not in state.before:
            continue
        state.deleted.add(dep.urn)
        chain.append(Step("delete", dep, cause=old.name, keys=("replaced with " + old.name,)))
    state.deleted.add(old.urn)
    chain.append(Step("delete", old, keys=("delete before replace",)))
    for step in chain:  # E8, read when the step runs: the whole chain is marked by then
        step.skipped = bool(step.reg.deleted_with) and step.reg.deleted_with in state.deleted
    state.steps.extend(chain)


def _register(state: _State, new: Registration) -> None:
    old = state.before.get(new.urn)
    state.registered.add(new.urn)
    if not new.custom or new.type == "pulumi:pulumi:StackReference":
        return
    if old is None:
        state.steps.append(Step("create", new))
        return
    if new.urn in state.deleted:  # deleted by an earlier delete-before-replace chain
        state.deleted.discard(new.urn)  # recreated: no longer deleted (step_generator.go L1499)
        state.replaced.add(new.urn)
        state.steps.append(Step("create", new, keys=("recreated after its cascade delete",)))
        return
    changed = _changed(state, old, new)
    replace: set[str] = set()
    if new.urn in state.targets:
        replace = {"--replace"}
    elif set(new.replace_with) & state.replaced:
        replace = {"replaceWith"}
    elif new.deleted_with and new.deleted_with in state.replaced:
        replace = {"deletedWith"}
    else:
        replace = provider_replace_keys(new, changed, old)
    if replace:
        state.replaced.add(new.urn)
        if new.delete_before_replace:
            _delete_before_replace(state, old)
            state.steps.append(Step("replace", new, delete_first=True, keys=tuple(sorted(replace))))
        else:  # E6
            state.steps.append(Step("replace", new, keys=tuple(sorted(replace))))
            state.end_deletes.append(old)
    elif changed:
        state.steps.append(Step("update", new, keys=tuple(sorted(changed))))


def _schedule_deletes(state: _State, condemned: list[Registration]) -> None:
    """E7 + E8 after the program has registered everything."""
    for reg in condemned:
        state.deleted.add(reg.urn)
    left = {r.urn: r for r in condemned}
    antichains = []
    while left:
        ready = [r for r in left.values() if not (_edges(r, parent=True) & set(left))]
        if not ready:  # a cycle cannot happen in a valid state; keep going deterministically
            ready = list(left.values())
        antichains.append(sorted(ready, key=lambda r: r.name))
        for r in ready:
            del left[r.urn]
    for batch in reversed(antichains):
        for reg in batch:
            # E8, and step.go DeleteStep.Apply L661: retain_on_delete leaves it in the cloud.
            skipped = reg.retain_on_delete or (bool(reg.deleted_with) and reg.deleted_with in state.deleted)
            state.steps.append(Step("delete", reg, skipped=skipped))


def topological(regs: list[Registration]) -> list[Registration]:
    """`regs` in dependency order, ties broken by URN: the order a snapshot keeps
    (dependency_graph.go relies on it) and a deterministic one (registrations of one
    evaluation arrive in whatever order their inputs resolve)."""
    by_urn = {r.urn: r for r in regs}
    waiting = {r.urn: _edges(r, parent=True) & set(by_urn) for r in regs}
    out: list[Registration] = []
    while waiting:
        ready = sorted(u for u, deps in waiting.items() if not deps) or sorted(waiting)[:1]
        for urn in ready:
            out.append(by_urn[urn])
            del waiting[urn]
        for deps in waiting.values():
            deps.difference_update(ready)
    return out


def plan_steps(before: Graph | None, after: Graph | None, *, replace: tuple[str, ...] = ()) -> list[Step]:
    """The steps of `pulumi up` from `before` to `after` (`after=None`: `pulumi destroy`).
    `replace` holds resource names passed as `pulumi up --replace <urn>`."""
    b = {r.urn: r for r in topological(list(before))} if before is not None else {}
    a = {r.urn: r for r in topological(list(after))} if after is not None else {}
    targets = {r.urn for r in [*b.values(), *a.values()] if r.name in replace}
    state = _State(before=b, after=a, targets=targets)
    for reg in a.values():
        _register(state, reg)
    removed = [r for r in b.values() if r.urn not in a and r.urn not in state.deleted and r.custom]
    _schedule_deletes(state, removed + state.end_deletes)
    return state.steps


def simulate(before: Graph | None, evaluate: Callable[[frozenset[str]], Graph | None], *,
             replace: tuple[str, ...] = ()) -> tuple[list[Step], Graph | None]:
    """plan_steps with the outputs a step changes fed back into the program.

    A replaced resource gets a new id, and a re-run Command a new stdout (join credentials
    mint a new token, C2). `evaluate(fresh)` re-runs the program with those resources'
    outputs new (tests/harness.py run_program(fresh=...)); repeated until nothing more
    changes, as the engine feeds each step's outputs to the resources registered after it.
    """
    fresh: frozenset[str] = frozenset()
    old = {r.urn for r in before} if before is not None else set()
    while True:
        after = evaluate(fresh)
        steps = plan_steps(before, after, replace=replace)
        news = frozenset(s.name for s in steps if s.op == "replace" or (s.op == "create" and s.reg.urn in old)
                         or (s.op == "update" and s.reg.type == "command:remote:Command"))
        if news <= fresh:
            return steps, after
        fresh |= news
