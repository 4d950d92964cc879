"""The Dockerfile and the Kubernetes manifests of docs/kubernetes.md agree with the app.

No cluster or Docker daemon here: the manifests are parsed and checked against what the
command line accepts and what the image provides (the running of N shards as separate
processes and their merge is tests/test_eval.py's job).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from team.eval.command import eval_parser, merge_parser
from team.sandbox.e2b import DEFAULT_CONCURRENCY, DEFAULT_RATE

yaml = pytest.importorskip("yaml")
ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "kubernetes.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


def manifests() -> list[dict]:
    return [yaml.safe_load(b) for b in blocks("yaml")]


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_dockerfile_builds_what_the_readme_installs():
    text = dockerfile()
    assert re.search(r"^FROM python:3\.1[1-9]", text, flags=re.M)
    assert "pip install -c requirements.lock -e ." in text
    for copied in ("team", "tui", "pyproject.toml", "requirements.lock"):
        assert re.search(rf"^COPY .*\b{re.escape(copied)}\b", text, flags=re.M), copied
    entry = re.search(r'^ENTRYPOINT (\[.*\])', text, flags=re.M).group(1)
    cmd = re.search(r'^CMD (\[.*\])', text, flags=re.M).group(1)
    assert yaml.safe_load(entry)[-1] == "sbteam-tui"
    args = yaml.safe_load(cmd)
    assert args[0] == "eval" and eval_parser().parse_args(args[1:]).sample
    assert "OPENAI_API_KEY=" not in text and "E2B_API_KEY=" not in text  # keys come from outside


def test_indexed_job_runs_eval_shards_into_the_volume():
    docs = manifests()
    job = next(d for d in docs if d["kind"] == "Job" and d["spec"].get("completionMode") == "Indexed")
    claim = next(d for d in docs if d["kind"] == "PersistentVolumeClaim")
    spec = job["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    shards = spec["completions"]
    assert int(env["JOB_COMPLETIONS"]) == shards == spec["parallelism"]
    assert "JOB_COMPLETION_INDEX" not in env  # Kubernetes sets it
    assert pod["restartPolicy"] in ("Never", "OnFailure")
    args = eval_parser().parse_args(container["args"][1:])
    assert container["args"][0] == "eval"
    mount = container["volumeMounts"][0]
    assert str(args.out).startswith(mount["mountPath"]) and env["SBTEAM_HOME"].startswith(mount["mountPath"])
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]
    # the keys from the Secret the page creates
    secret = container["envFrom"][0]["secretRef"]["name"]
    assert any(f"create secret generic {secret}" in b for b in blocks("bash"))
    # E2B's account limits shared out among the pods: never more than the Hobby tier in all
    assert env["SBTEAM_SANDBOX"] == "e2b"
    assert int(env["SBTEAM_E2B_CONCURRENCY"]) * shards <= DEFAULT_CONCURRENCY
    assert float(env["SBTEAM_E2B_RATE"]) * shards <= DEFAULT_RATE
    assert args.concurrency <= int(env["SBTEAM_E2B_CONCURRENCY"])
    # the image's user can write the volume
    uid = re.search(r"useradd .*--uid (\d+)", dockerfile()).group(1)
    assert str(pod["securityContext"]["runAsUser"]) == uid == str(pod["securityContext"]["fsGroup"])


def test_merge_job_reads_what_the_shards_wrote():
    docs = manifests()
    job = next(d for d in docs if d["kind"] == "Job" and d["spec"].get("completionMode") == "Indexed")
    merge = next(d for d in docs if d["kind"] == "Job" and d is not job)
    out = eval_parser().parse_args(job["spec"]["template"]["spec"]["containers"][0]["args"][1:]).out
    args = merge["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:2] == ["eval", "merge"]
    assert merge_parser("eval").parse_args(args[2:]).folders == [out]


def test_by_hand_commands_parse():
    for block in blocks("bash"):
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("sbteam-tui eval") and " merge" not in line:
                eval_parser().parse_args(shlex.split(line)[2:])
