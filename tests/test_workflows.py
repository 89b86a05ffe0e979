"""The GitHub workflows: schema-valid, pinned, and their shell and script logic executed.

GitHub itself can't run here, so each workflow is checked three ways: against the
workflow JSON schema (check-jsonschema's vendored copy), structurally (triggers,
permissions, gating), and by running its `run:` blocks with bash in a scratch workspace
(plan review, credential gates) and its github-script body with node against a fake API.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ("tests", "plan-review", "preview", "deploy")
# Every workflow in the directory gets the generic checks, including ones added later.
ALL = sorted({p.stem for p in WORKFLOWS.glob("*.yml")} | set(NAMES))
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
sys.path.insert(0, str(ROOT / "scripts"))
import plan_diff  # noqa: E402


def load(name: str) -> dict[str, Any]:
    wf = yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())
    wf["on"] = wf.pop(True, wf.get("on"))  # YAML 1.1 reads the key `on` as boolean true
    return wf


def steps(wf: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in wf["jobs"].values() for s in job["steps"]]


def step(wf: dict[str, Any], name: str) -> dict[str, Any]:
    found = [s for s in steps(wf) if s.get("name") == name]
    assert len(found) == 1, f"no single step named {name!r}"
    return found[0]


def using(wf: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in steps(wf) if s.get("uses", "").split("@")[0] == action]


def run_bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A run: block as GitHub runs it on Linux (`bash --noprofile --norc -eo pipefail`)."""
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd,
                          env={"PATH": os.environ["PATH"], "HOME": str(cwd), **env},
                          capture_output=True, text=True, timeout=120)


# --- every workflow ----------------------------------------------------------------------

def test_workflows_validate_against_the_github_workflow_schema(tmp_path):
    files = [str(WORKFLOWS / f"{n}.yml") for n in ALL]
    proc = subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", *files],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The validator really rejects a broken workflow (a job without runs-on).
    broken = tmp_path / "broken.yml"
    broken.write_text((WORKFLOWS / "tests.yml").read_text().replace("runs-on:", "runs-onn:"))
    proc = subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(broken)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "runs-on" in proc.stdout


def test_the_four_workflows_exist_and_use_the_yml_extension():
    assert set(NAMES) <= {p.stem for p in WORKFLOWS.glob("*.yml")}
    assert not list(WORKFLOWS.glob("*.yaml")), "use .yml, so every check here sees the file"


@pytest.mark.parametrize("name", ALL)
def test_actions_are_pinned_to_a_major_version_or_a_commit(name):
    for s in steps(load(name)):
        if "uses" in s:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})", s["uses"]), s["uses"]


@pytest.mark.parametrize("name", ALL)
def test_run_blocks_pass_shellcheck(name, tmp_path):
    """Expressions are replaced by a word; the rest is plain bash that shellcheck can judge."""
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (scripts/test.sh installs it)")
    for i, s in enumerate(steps(load(name))):
        if "run" in s:
            script = tmp_path / f"{name}-{i}.sh"
            script.write_text("#!/usr/bin/env bash\nset -eo pipefail\n"
                              + re.sub(r"\$\{\{.*?\}\}", "EXPR", s["run"]))
            proc = subprocess.run(["shellcheck", "-s", "bash", str(script)], capture_output=True, text=True)
            assert proc.returncode == 0, f"{s.get('name', i)}:\n{proc.stdout}"


@pytest.mark.parametrize("name", ALL)
def test_checkouts_keep_the_token_out_of_git_config(name):
    for s in using(load(name), "actions/checkout"):
        assert s.get("with", {}).get("persist-credentials") is False


# --- tests -------------------------------------------------------------------------------

def test_tests_workflow_runs_the_readme_test_command_on_push_and_pr():
    wf = load("tests")
    assert set(wf["on"]) == {"push", "pull_request"}
    runs = [s["run"].strip() for s in steps(wf) if "run" in s]
    assert runs == ["./scripts/test.sh"]
    assert "./scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    readme = ROOT / "README.md"
    if readme.exists():  # the README names the same command
        assert "./scripts/test.sh" in readme.read_text()


# --- plan review -------------------------------------------------------------------------

def test_plan_review_is_credential_free_and_safe_for_forks():
    wf = load("plan-review")
    text = (WORKFLOWS / "plan-review.yml").read_text()
    assert set(wf["on"]) == {"pull_request"}  # never pull_request_target with PR code
    assert "secrets." not in text
    assert wf["permissions"] == {"contents": "read"}
    render, comment = wf["jobs"]["render"], wf["jobs"]["comment"]
    assert "permissions" not in render  # the pull request's code gets a read-only token
    assert comment["permissions"] == {"contents": "read", "pull-requests": "write"} and comment["needs"] == "render"
    refs = [s.get("with", {}).get("ref") for s in render["steps"] if s.get("uses", "").startswith("actions/checkout")]
    assert refs == [None, "${{ github.event.pull_request.base.sha }}"]
    # The job holding the write token checks out only the base branch and runs only its code.
    refs = [s.get("with", {}).get("ref") for s in comment["steps"] if s.get("uses", "").startswith("actions/checkout")]
    assert refs == ["${{ github.event.pull_request.base.sha }}"]
    runs = " ".join(s.get("run", "") for s in comment["steps"])
    assert "head/" not in runs and "venv/bin" not in runs and "base/scripts/plan_diff.py" in runs
    upload = [s for s in render["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert len(upload) == 1 and upload[0]["with"]["path"] == "plan/"
    comment_step = step(wf, "Post or update the sticky comment")
    fork_notice = step(wf, "Explain the missing comment on forks")
    assert comment_step["if"].replace("==", "!=") == fork_notice["if"]
    assert "::notice" in fork_notice["run"]
    for name in ("Render both plans", "Compare", "Operation plan", "Add the operation plan"):
        assert "${{" not in step(wf, name)["run"]  # no expression is pasted into shell


STUB_PLAN = textwrap.dedent('''\
    """Stand-in for scripts/plan.py: writes a fixed plan, or fails when told to."""
    import argparse, pathlib, sys
    ap = argparse.ArgumentParser()
    ap.add_argument("--stack", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if FAIL:
        sys.exit("plan.py: boom")
    out = pathlib.Path(args.out)
    (out / "nodes" / "dev-worker-0").mkdir(parents=True, exist_ok=True)
    (out / "resources.txt").write_text(RESOURCES)
    (out / "nodes" / "dev-worker-0" / "kata.sh").write_text(SCRIPT)
    (out / "stack.txt").write_text(args.stack + "\\n")
''')


def _checkout(root: Path, resources: str, script: str, *, plan: bool = True, fail: bool = False) -> None:
    (root / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "plan_diff.py", root / "scripts" / "plan_diff.py")
    if plan:
        (root / "scripts" / "plan.py").write_text(
            f"FAIL = {fail}\nRESOURCES = {resources!r}\nSCRIPT = {script!r}\n" + STUB_PLAN)
    (root / "venv" / "bin").mkdir(parents=True)
    (root / "venv" / "bin" / "python").symlink_to(sys.executable)


@pytest.mark.parametrize("base_kind", ["renders", "no-plan", "fails"])
def test_plan_review_render_and_compare_steps(tmp_path, base_kind):
    """The workflow's own shell, run for real against stub checkouts and the real plan_diff."""
    wf = load("plan-review")
    _checkout(tmp_path / "head", "a A -\nb B -\n", "echo new\n")
    _checkout(tmp_path / "base", "a A -\n", "echo old\n",
              plan=base_kind != "no-plan", fail=base_kind == "fails")
    summary = tmp_path / "step-summary.md"
    env = {"PLAN_STACK": "dev", "GITHUB_STEP_SUMMARY": str(summary), "RUN_URL": "https://example.test/run/1"}
    for name in ("Render both plans", "Compare"):
        proc = run_bash(step(wf, name)["run"], tmp_path, env)
        assert proc.returncode == 0, f"{name}: {proc.stdout}{proc.stderr}"
    text = (tmp_path / "plan" / "summary.md").read_text()
    assert text.startswith(plan_diff.MARKER)
    assert "(stack dev)" in text and "https://example.test/run/1" in text
    assert "`b`" in text and (tmp_path / "plan" / "head" / "stack.txt").read_text() == "dev\n"
    full = (tmp_path / "plan" / "full.diff").read_text()
    if base_kind == "renders":
        assert "1 added, 0 removed" in text and "`dev-worker-0` | kata | changed (+1 −1)" in text
        assert "-echo old\n+echo new\n" in full
    else:
        assert "2 added, 0 removed" in text and "shown as added" in text
        assert "+echo new\n" in full and "-echo old" not in full


def test_plan_review_fails_when_the_head_plan_does_not_render(tmp_path):
    wf = load("plan-review")
    _checkout(tmp_path / "head", "", "", fail=True)
    _checkout(tmp_path / "base", "a A -\n", "x\n")
    proc = run_bash(step(wf, "Render both plans")["run"], tmp_path, {"PLAN_STACK": "dev"})
    assert proc.returncode != 0 and "boom" in proc.stderr


FAKE_GITHUB = textwrap.dedent('''\
    const fs = require('fs');
    const state = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
    let nextId = 100;
    const calls = [];
    const github = {
      paginate: async (fn, params) => fn(params),
      rest: { issues: {
        listComments: async () => state.comments,
        createComment: async (p) => {
          calls.push(['create', p.issue_number, p.body]);
          state.comments.push({id: nextId++, user: {type: 'Bot'}, body: p.body});
        },
        updateComment: async (p) => { calls.push(['update', p.comment_id, p.body]);
                                      state.comments.find(c => c.id === p.comment_id).body = p.body; },
      } },
    };
    const context = { repo: { owner: 'o', repo: 'r' }, issue: { number: 7 } };
    const core = { setFailed: (m) => calls.push(['failed', m]) };
    const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
    new AsyncFunction('require', 'github', 'context', 'core', fs.readFileSync(process.argv[3], 'utf8'))(
      require, github, context, core
    ).then(() => { fs.writeFileSync(process.argv[2], JSON.stringify(state));
                   process.stdout.write(JSON.stringify(calls)); });
''')


def test_sticky_comment_script_creates_once_then_updates(tmp_path):
    """The github-script body, run by node the way github-script runs it (an async
    function of require, github, context, core) against a fake REST API."""
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        pytest.skip("node is not installed; the comment script runs on GitHub's runner only")
    script = step(load("plan-review"), "Post or update the sticky comment")
    (tmp_path / "script.js").write_text(script["with"]["script"])
    (tmp_path / "fake.js").write_text(FAKE_GITHUB)
    state = tmp_path / "state.json"
    human = {"id": 1, "user": {"type": "User"}, "body": plan_diff.MARKER + "\nquoted by a human"}
    state.write_text(json.dumps({"comments": [human]}))

    def post(body: str) -> list:
        (tmp_path / "plan").mkdir(exist_ok=True)
        (tmp_path / "plan" / "summary.md").write_text(body)
        proc = subprocess.run([node, "fake.js", str(state), "script.js"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=60, env={**os.environ, **script["env"]})
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    first = plan_diff.MARKER + "\none\n"
    assert post(first) == [["create", 7, first]]
    assert post(first) == []  # unchanged summary: no API write
    second = plan_diff.MARKER + "\ntwo\n"
    assert post(second) == [["update", 100, second]]
    comments = json.loads(state.read_text())["comments"]
    assert [c["body"] for c in comments] == [human["body"], second]
    assert post("no marker\n")[0][0] == "failed"


# --- preview and deploy ------------------------------------------------------------------

GATE = "Check for the backend token and cloud credentials"


@pytest.mark.parametrize("name, command", [("preview", "preview"), ("deploy", "up")])
def test_pulumi_runs_only_behind_the_credential_gate(name, command):
    wf = load(name)
    (pulumi,) = using(wf, "pulumi/actions")
    assert pulumi["uses"] == "pulumi/actions@v7"
    assert pulumi["with"]["command"] == command and pulumi["with"]["policyPacks"] == "policy"
    assert (ROOT / "policy" / "PulumiPolicy.yaml").exists()
    prefix = "PREVIEW_" if name == "preview" else ""  # preview's secrets exist only in its environment
    assert pulumi["env"] == {"PULUMI_ACCESS_TOKEN": f"${{{{ secrets.{prefix}PULUMI_ACCESS_TOKEN }}}}"}
    after_gate = steps(wf)[steps(wf).index(step(wf, GATE)) + 1:]
    gated = "steps.creds.outputs.ready == 'true'"
    assert after_gate and all(s.get("if") in (gated, f"always() && {gated}") for s in after_gate)
    assert step(wf, GATE)["id"] == "creds"


@pytest.mark.parametrize("name", ["preview", "deploy"])
@pytest.mark.parametrize("token, clouds, ready", [
    ("true", "true", "true"), ("false", "true", "false"), ("true", "false", "false"),
    ("false", "false", "false")])
def test_credential_gate_skips_with_a_visible_notice(tmp_path, name, token, clouds, ready):
    out = tmp_path / "out"
    out.touch()
    proc = run_bash(step(load(name), GATE)["run"], tmp_path, {
        "HAS_PULUMI_TOKEN": token, "HAS_CLOUDS_YAML": clouds, "GITHUB_OUTPUT": str(out),
        "PULUMI_STACK": "dev"})
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == f"ready={ready}\n"
    notice = [line for line in proc.stdout.splitlines() if line.startswith("::notice ")]
    if ready == "true":
        assert notice == []
    else:
        assert len(notice) == 1
        prefix = "PREVIEW_" if name == "preview" else ""
        missing = [prefix + n for n, v in (("PULUMI_ACCESS_TOKEN", token), ("OS_CLOUDS_YAML", clouds)) if v == "false"]
        assert all(m in notice[0] for m in missing)


def test_preview_takes_its_credentials_from_a_protected_environment():
    """Issue #12 s3: the pull request's code gets credentials only through an environment a
    maintainer approves, never as repository secrets."""
    wf = load("preview")
    (job,) = wf["jobs"].values()
    assert job["environment"] == "preview"
    # Only names no repository-level deploy secret carries (an environment falls back to
    # repository secrets of the same name).
    text = (WORKFLOWS / "preview.yml").read_text()
    assert set(re.findall(r"secrets\.(\w+)", text)) == {"PREVIEW_PULUMI_ACCESS_TOKEN", "PREVIEW_OS_CLOUDS_YAML"}


def test_preview_comments_on_the_pull_request():
    wf = load("preview")
    assert set(wf["on"]) == {"pull_request"}
    assert wf["permissions"]["pull-requests"] == "write"
    (pulumi,) = using(wf, "pulumi/actions")
    assert pulumi["with"]["comment-on-pr"] is True


def test_deploy_runs_on_the_default_branch_or_dispatch_behind_an_environment():
    wf = load("deploy")
    assert set(wf["on"]) == {"push", "workflow_dispatch"}
    assert wf["on"]["push"] == {"branches": ["main"]}
    job = wf["jobs"]["up"]
    assert "github.event.repository.default_branch" in job["if"]
    assert job["environment"]["name"] and job["environment"]["name"] == job["env"]["PULUMI_STACK"]
    assert wf["concurrency"]["cancel-in-progress"] is False  # never kill a running update
    assert "pull-requests" not in wf["permissions"]


def test_deploy_runs_inside_allowed_cidrs_with_a_pinned_cli_and_enough_parallelism(tmp_path):
    """review-pulumi F2, F7, F11: a named self-hosted runner, or a visible skip."""
    wf = load("deploy")
    runner, job = wf["jobs"]["runner"], wf["jobs"]["up"]
    assert job["needs"] == "runner" and "needs.runner.outputs.ready == 'true'" in job["if"]
    assert "vars.KATAK8S_DEPLOY_RUNNER" in job["runs-on"] and "self-hosted" not in str(runner["runs-on"])
    check = runner["steps"][0]
    for labels, ready in (("", "false"), ('["self-hosted", "katak8s"]', "true")):
        out = tmp_path / f"out-{ready}"
        proc = run_bash(check["run"], tmp_path, {"LABELS": labels, "GITHUB_OUTPUT": str(out)})
        assert proc.returncode == 0 and out.read_text() == f"ready={ready}\n"
        assert ("::notice" in proc.stdout) == (ready == "false")
    # The cloud credentials never outlive the job on a self-hosted runner.
    write = step(wf, "Write clouds.yaml")["run"]
    assert "RUNNER_TEMP" in write and "OS_CLIENT_CONFIG_FILE" in write and "~/.config" not in write
    cleanup = step(wf, "Remove the credentials from the runner")
    assert cleanup["if"].startswith("always()") and "clouds.yaml" in cleanup["run"]
    (pulumi,) = using(wf, "pulumi/actions")
    assert pulumi["with"]["pulumi-version"] == "3.272.0"
    assert "PULUMI_PARALLEL" in str(pulumi["with"]["parallel"])
    (preview,) = using(load("preview"), "pulumi/actions")
    assert preview["with"]["pulumi-version"] == "3.272.0"


@pytest.mark.parametrize("base_has_graph", [True, False])
def test_plan_review_operation_plan_step_runs_the_real_model(tmp_path, base_has_graph):
    """The step's own shell with the real scripts: this checkout as both head and base,
    the base plan one worker bigger, so the comment shows the scale-in order."""
    wf = load("plan-review")
    (tmp_path / "head").symlink_to(ROOT)
    base = tmp_path / "plan" / "base"
    subprocess.run([sys.executable, str(ROOT / "scripts/plan.py"), "--stack", "dev", "--out", str(base)],
                   check=True, capture_output=True, cwd=ROOT)
    if base_has_graph:
        graph = json.loads((base / "graph.json").read_text())
        bigger = subprocess.run(
            [sys.executable, str(ROOT / "scripts/plan.py"), "--stack", "dev", "--out", str(tmp_path / "big"),
             "--set", "workerCount=3"], check=True, capture_output=True, cwd=ROOT)
        assert bigger.returncode == 0 and graph["registrations"]
        shutil.copy(tmp_path / "big" / "graph.json", base / "graph.json")
    else:
        (base / "graph.json").unlink()
    (tmp_path / "plan" / "summary.md").write_text(plan_diff.MARKER + "\n")
    summary = tmp_path / "step-summary.md"
    for name in ("Operation plan", "Add the operation plan"):
        proc = run_bash(step(wf, name)["run"], tmp_path, {"PLAN_STACK": "dev", "GITHUB_STEP_SUMMARY": str(summary)})
        assert proc.returncode == 0, proc.stdout + proc.stderr
    text = summary.read_text()
    assert text.startswith(plan_diff.MARKER) and "### Operation plan" in text
    if base_has_graph:
        assert "dev-worker-2: drain (on dev-cp-0), then kubeadm reset, then delete the Node" in text
    else:
        assert "first pulumi up" in text and "kubeadm init" in text


def test_plan_review_renders_the_calico_charts_with_a_pinned_helm():
    """review-pulumi F9: a wrong chart version fails the pull request, not `pulumi up`."""
    render = load("plan-review")["jobs"]["render"]
    runs = [s.get("run", "") for s in render["steps"]]
    install = next(i for i, r in enumerate(runs) if "scripts/install-helm.sh" in r)
    check = next(i for i, r in enumerate(runs) if "scripts/check_charts.py" in r)
    assert install < check and '--helm "${RUNNER_TEMP}/bin/helm"' in runs[check]
    assert "permissions" not in render  # the read-only job: helm never sees a write token
