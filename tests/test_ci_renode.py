"""The Renode CI: the workflow parses and calls tools/ci-renode.sh, the pinned Renode version is
written once and quoted by the README and the backend's floor, and the script run with a stubbed
download stops, in one line and non-zero, where Renode is required (before any set-up)."""
import re
import subprocess
import tarfile

import pytest
import yaml

from harness.backends import renode
from harness.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "tools" / "ci-renode.sh"
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "renode.yml"


def _pinned(name):
    (value,) = re.findall(rf'^{name}="([^"]*)"$', SCRIPT.read_text(), re.MULTILINE)
    return value


def _steps(job):
    return [step.get("run", "") for step in job["steps"]], [step.get("uses", "") for step in job["steps"]]


def test_the_workflow_runs_the_script_and_the_qemu_suite_on_push_and_pull_requests():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    jobs = workflow["jobs"]
    renode_runs, renode_uses = _steps(jobs["renode"])
    assert "bash tools/ci-renode.sh" in renode_runs and jobs["renode"]["runs-on"].startswith("ubuntu")
    caches = [step["with"]["path"] for step in jobs["renode"]["steps"] if step.get("uses", "").startswith("actions/cache")]
    assert ".cache/renode" in caches and "~/.cache/pip" in caches
    (upload,) = [step for step in jobs["renode"]["steps"] if step.get("uses", "").startswith("actions/upload-artifact")]
    assert upload["with"]["path"] == jobs["renode"]["env"]["ARTIFACTS_DIR"] and upload["if"] == "always()"
    qemu_runs, _ = _steps(jobs["qemu"])
    assert any(run.startswith("bash tools/test.sh") for run in qemu_runs)


def test_the_gitlab_snippet_parses_and_runs_the_same_jobs():
    docs = (REPO_ROOT / "docs" / "ci.md").read_text()
    (snippet,) = re.findall(r"```yaml\n(.*?)```", docs, re.S)
    jobs = yaml.safe_load(snippet)
    assert jobs["renode"]["script"] == ["bash tools/ci-renode.sh"]
    assert jobs["qemu"]["script"][0].startswith("bash tools/test.sh")


def test_the_pinned_version_is_written_once_and_quoted_by_readme_and_backend():
    version = _pinned("RENODE_VERSION")
    assert SCRIPT.read_text().count(version) == 1  # URL and paths use ${RENODE_VERSION}
    assert version not in WORKFLOW.read_text()  # its cache key follows the script's hash instead
    assert renode.RENODE_MIN_VERSION == version
    readme = (REPO_ROOT / "README.md").read_text()
    ci_section = readme[readme.index("### CI without hardware"):]
    assert f"Renode {version}" in ci_section.split("\n\n")[1]
    assert f"Renode **{version} or newer**" in readme
    assert re.fullmatch(r"[0-9a-f]{64}", _pinned("RENODE_SHA256"))


def _run_script(tmp_path, fetch_body, **env):
    fetch = tmp_path / "fetch.sh"
    fetch.write_text("#!/bin/sh\n" + fetch_body + "\n")
    fetch.chmod(0o755)
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CI_RENODE_FETCH": str(fetch),
                   "RENODE_CACHE_DIR": str(tmp_path / "cache"), "ARTIFACTS_DIR": str(tmp_path / "artifacts"), **env}
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=60, env=environment)


def _stopped_in_one_line(result, expected):
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("ci-renode: error: ") and expected in errors[0], result.stderr
    assert "setup:" not in result.stdout + result.stderr  # stopped before the project's set-up


def test_an_unreachable_download_stops_in_one_line(tmp_path):
    result = _run_script(tmp_path, 'echo "curl: (6) Could not resolve host: dl.antmicro.com" >&2; exit 6')
    _stopped_in_one_line(result, f"cannot download Renode {_pinned('RENODE_VERSION')} from https://dl.antmicro.com/")
    assert "Could not resolve host" in result.stderr  # the reason, on the same line
    assert not list((tmp_path / "cache").glob("*"))  # no partial download left behind


def test_a_download_with_another_checksum_is_refused(tmp_path):
    result = _run_script(tmp_path, 'printf "not renode" > "$2"')
    _stopped_in_one_line(result, "refusing to run it (see RENODE_ALLOW_UNVERIFIED in the script)")
    assert not list((tmp_path / "cache").glob("*"))  # the bad file is not kept for the next run


@pytest.fixture
def old_renode_archive(tmp_path):
    """A portable-looking archive whose `renode` says it is 1.14.0."""
    top = tmp_path / "renode_1.14.0_portable"
    top.mkdir()
    fake = top / "renode"
    fake.write_text('#!/bin/sh\necho "Renode, version 1.14.0.1 (fake)"\n')
    fake.chmod(0o755)
    archive = tmp_path / "old.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(top, arcname=top.name)
    return archive


def test_the_override_runs_an_unverified_download_and_the_version_is_still_checked(tmp_path, old_renode_archive):
    result = _run_script(tmp_path, f'cp "{old_renode_archive}" "$2"', RENODE_ALLOW_UNVERIFIED="1")
    assert "WARNING: running an unverified Renode download" in result.stderr
    stderr = "\n".join(line for line in result.stderr.splitlines() if "WARNING" not in line)
    _stopped_in_one_line(result.__class__(result.args, result.returncode, result.stdout, stderr),
                         f"renode --version says 'Renode, version 1.14.0.1 (fake)', expected Renode {_pinned('RENODE_VERSION')}")
