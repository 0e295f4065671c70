"""drone-runner-kube v1.0.0-rc.5 with the runner env the drone subchart renders, compiling the sample
app's `.drone.yml` expanded with the homeci template of charts/drone-pipelines.

The template is expanded by Go's text/template (homeci_testing.drone.GoTemplateRenderer, as Drone does). The
runner side uses the runner's own code: the real `drone-runner-kube daemon` start-up parses the rendered
env, and `homeci-runner-compile` (toolchain/gomod/runner/cmd) runs the runner's config loader, linter and
compiler on it. Rewritten for loopback: only DRONE_RUNNER_ENV_FILE's path (the mounted ConfigMap file
is materialised under a tmp dir).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeci import contract, manifests, paths, rendering
from homeci.manifests import Manifest
from homeci_testing import drone
from homeci_testing.realprog import LoopbackPod
from homeci_testing.realprog_harness import binary, loopback_env
from homeci_testing.support import KUBE_VERSION, PIPELINES, PIPELINES_RELEASE, RELEASE

SAMPLE_APP = paths.sample_app()
REPO = "homeci/sample-app"


def _quantity(value: str | int, *, cpu: bool) -> float:
    """A Kubernetes quantity as millicores (cpu) or bytes (memory)."""
    text = str(value)
    if cpu:
        return float(text[:-1]) if text.endswith("m") else float(text) * 1000
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def _runner_size(value: str) -> float:
    """DRONE_RESOURCE_*_MEMORY as the runner reads it (go-units RAMInBytes: 1GiB, 128MiB, 100MB = MiB)."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgG]?)(i?)[bB]?", value.strip())
    assert m, f"cannot read runner memory size {value!r}"
    factor = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[m.group(2).lower()]
    return float(m.group(1)) * factor


@pytest.fixture(scope="module")
def runner(rendered: list[Manifest], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pod = LoopbackPod(rendered, "Deployment", f"{RELEASE}-drone-runner", "runner",
                      tmp_path_factory.mktemp("runner"))
    return {"pod": pod, "env": loopback_env(pod)}


@pytest.fixture(scope="module")
def pipelines(hosts: dict[str, str]) -> list[Manifest]:
    """charts/drone-pipelines as an operator installs it next to this umbrella scenario (its default
    scenario, pointed at the scenario's domain and registry host)."""
    domain = hosts["git"].split(".", 1)[1]
    return rendering.render(PIPELINES, [PIPELINES / "ci" / "default-values.yaml"],
                            sets=(f"stack.domain={domain}", f"registry.host={hosts['registry']}"),
                            release=PIPELINES_RELEASE, namespace=rendering.DEFAULT_NAMESPACE,
                            kube_version=KUBE_VERSION)


@pytest.fixture(scope="module")
def pipeline_text(pipelines: list[Manifest], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample app's `.drone.yml` (`kind: template`) expanded with the registered homeci template."""
    if shutil.which("go") is None:
        pytest.skip("Go is needed to expand the Drone template (Go text/template) and to build the runner")
    objs = pipelines
    sample = yaml.safe_load((SAMPLE_APP / ".drone.yml").read_text())
    assert sample.get("kind") == "template", "examples/sample-app/.drone.yml no longer loads a template"
    templates = manifests.get(objs, "ConfigMap", f"{PIPELINES_RELEASE}-templates").obj["data"]
    registered = templates[sample["load"]]
    owner, name = REPO.split("/")
    try:
        return drone.GoTemplateRenderer().render(registered, drone.template_data(sample.get("data") or {},
                                                 owner=owner, name=name),
                                                 workdir=tmp_path_factory.mktemp("template"))
    except Exception as exc:  # Go missing or template error: the message says which
        pytest.fail(f"expanding {sample['load']} failed: {exc}")


def _compile(env: dict[str, str], text: str, workdir: Path,
             repo: str = REPO) -> subprocess.CompletedProcess[str]:
    source = workdir / ".drone.yml"
    source.write_text(text)
    pipeline = yaml.safe_load(text)
    secrets = sorted({str(v["from_secret"]) for step in pipeline.get("steps") or []
                      for section in ("settings", "environment")
                      for v in (step.get(section) or {}).values()
                      if isinstance(v, dict) and "from_secret" in v})
    args = [str(binary("homeci-runner-compile")), "--source", str(source), "--stage", str(pipeline["name"]),
            "--repo", repo, "--spec-json", str(workdir / "spec.json")]
    for name in secrets:
        args += ["--secret", f"{name}=t2-{name}"]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def compiled(runner: dict[str, Any], pipeline_text: str,
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("compile")
    proc = _compile(runner["env"], pipeline_text, work)
    assert proc.returncode == 0, (
        f"drone-runner-kube (config+linter+compiler) rejected the rendered runner env or the pipeline: "
        f"{proc.stderr.strip()}"
    )
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    pod = next(d for d in docs if d.get("kind") == "Pod")
    spec = json.loads((work / "spec.json").read_text())
    return {"pod": pod, "spec": spec, "pipeline": yaml.safe_load(pipeline_text)}


def _steps_env(runner: dict[str, Any]) -> dict[str, str]:
    """The dotenv file DRONE_RUNNER_ENV_FILE points at (materialised from the rendered ConfigMap)."""
    path = runner["env"].get("DRONE_RUNNER_ENV_FILE")
    assert path, f"Deployment/{RELEASE}-drone-runner sets no DRONE_RUNNER_ENV_FILE"
    return dict(line.split("=", 1) for line in Path(path).read_text().splitlines()
                if line.strip() and not line.lstrip().startswith("#"))


def _ca_volume(runner: dict[str, Any]) -> tuple[str, str, str]:
    """(host path, container path, CA file in steps) of the DRONE_RUNNER_VOLUMES entry with the CA."""
    raw = runner["env"].get("DRONE_RUNNER_VOLUMES", "")
    assert raw, f"Deployment/{RELEASE}-drone-runner sets no DRONE_RUNNER_VOLUMES (the CA in every step)"
    ca_file = _steps_env(runner).get("HOMECI_CA_FILE", "")
    assert ca_file, "steps.env sets no HOMECI_CA_FILE"
    for item in raw.split(","):
        host, _, rest = item.partition(":")
        container = rest.split(":")[0]
        if ca_file == container or ca_file.startswith(container.rstrip("/") + "/"):
            return host, container, ca_file
    raise AssertionError(f"no DRONE_RUNNER_VOLUMES entry ({raw}) mounts steps.env HOMECI_CA_FILE {ca_file}")


def test_runner_daemon_accepts_its_rendered_environment(runner: dict[str, Any], tmp_path: Path) -> None:
    """The real daemon parses its env first; here it must get past that and stop only at the missing
    in-cluster Kubernetes client (there is no cluster on loopback)."""
    env = {k: v for k, v in runner["env"].items() if not k.startswith("KUBERNETES_")}
    proc = subprocess.run([str(binary("drone-runner-kube")), "daemon"], env=env, capture_output=True,
                          text=True, timeout=60, check=False, cwd=tmp_path)
    out = (proc.stdout + proc.stderr).strip()
    assert "envconfig" not in out, f"drone-runner-kube refuses the rendered env: {out}"
    assert "in-cluster" in out, (
        f"drone-runner-kube daemon stopped for another reason than the missing cluster: {out}"
    )


def test_pod_runs_in_the_build_namespace_with_the_deployer_account(compiled: dict[str, Any],
                                                                   runner: dict[str, Any],
                                                                   pipelines: list[Manifest]) -> None:
    pod = compiled["pod"]
    want_ns = runner["env"].get("DRONE_NAMESPACE_DEFAULT")
    assert pod["metadata"]["namespace"] == want_ns, (
        f"compiled pod namespace {pod['metadata']['namespace']!r}, runner DRONE_NAMESPACE_DEFAULT {want_ns!r}"
    )
    sa = pod["spec"].get("serviceAccountName")
    assert sa == compiled["pipeline"].get("service_account_name"), f"compiled pod serviceAccountName {sa!r}"
    accounts = {(m.namespace, m.name) for m in manifests.by_kind(pipelines, "ServiceAccount")}
    assert (want_ns, sa) in accounts, (
        f"the step pod uses ServiceAccount {want_ns}/{sa}, which charts/drone-pipelines does not create "
        f"(it creates {sorted(accounts)})"
    )


def _step_pod_policy_admits(pipelines: list[Manifest], pod: dict[str, Any]) -> bool:
    """drone-pipelines' step-pods rule, read from its rendered policy: a pod may use `default` or the
    deployer its owner label maps to (the CEL itself runs on a real API server in tests/sim)."""
    policy = manifests.get(pipelines, "ValidatingAdmissionPolicy", f"{PIPELINES_RELEASE}-step-pods")
    deployers = json.loads(next(v["expression"] for v in policy.obj["spec"]["variables"]
                                if v["name"] == "deployers"))
    account = pod["spec"].get("serviceAccountName") or "default"
    owner = (pod["metadata"].get("labels") or {}).get("io.drone.repo.namespace", "")
    return bool(account == "default" or deployers.get(owner) == account)


@pytest.mark.parametrize("owner", ["homeci", "Alice.Smith", "team__web.", "A--b_"])
def test_the_runner_labels_step_pods_with_the_owner_whatever_the_pipeline_says(
    owner: str, runner: dict[str, Any], pipeline_text: str, pipelines: list[Manifest], tmp_path: Path
) -> None:
    """The step-pods admission policy trusts label io.drone.repo.namespace: the real runner compiler sets
    it after the pipeline's own metadata.labels (a forged one is overwritten) to the owner mapped the way
    drone-pipelines maps owners (homeci.contract.owner_label = the chart's ownerKey). So the pipeline of
    the sample app (expanded for owner homeci, with homeci's deployer) is admitted for homeci only."""
    pipeline = yaml.safe_load(pipeline_text)
    pipeline["metadata"] = {"labels": {"io.drone.repo.namespace": "homeci", "io.drone": "forged"}}
    proc = _compile(runner["env"], yaml.safe_dump(pipeline), tmp_path, repo=f"{owner}/app")
    assert proc.returncode == 0, f"drone-runner-kube refused the pipeline: {proc.stderr.strip()}"
    pod = next(d for d in yaml.safe_load_all(proc.stdout) if d and d.get("kind") == "Pod")
    labels = pod["metadata"]["labels"]
    assert labels["io.drone.repo.namespace"] == contract.owner_label(owner), (
        f"repository {owner}/app: the runner labels its pods io.drone.repo.namespace="
        f"{labels['io.drone.repo.namespace']!r}, drone-pipelines expects {contract.owner_label(owner)!r}"
    )
    assert labels["io.drone"] == "true", "the runner's own labels win over the pipeline's"
    assert pod["spec"]["serviceAccountName"] == contract.deployer_account("homeci", PIPELINES_RELEASE)
    assert _step_pod_policy_admits(pipelines, pod) == (owner == "homeci"), (
        f"step pod of {owner}/app running as {pod['spec']['serviceAccountName']}: admitted must be "
        f"{owner == 'homeci'}"
    )


def test_chart_maps_owners_like_the_runner() -> None:
    """The chart's ownerKey (Helm) and homeci.contract.owner_label (Python) agree on tricky names."""
    owners = ["homeci", "Alice.Smith", "team__web.", "A--b_", "x.-_y"]
    objs = rendering.render(PIPELINES, [PIPELINES / "ci" / "default-values.yaml"],
                            sets=tuple(f"targets[0].owners[{i}]={o}" for i, o in enumerate(owners)),
                            release=PIPELINES_RELEASE, kube_version=KUBE_VERSION)
    policy = manifests.get(objs, "ValidatingAdmissionPolicy", f"{PIPELINES_RELEASE}-step-pods")
    deployers = json.loads(next(v["expression"] for v in policy.obj["spec"]["variables"]
                                if v["name"] == "deployers"))
    assert deployers == {contract.owner_label(o): contract.deployer_account(o, PIPELINES_RELEASE)
                         for o in owners}


def test_every_step_mounts_the_ca_and_gets_the_ca_environment(
        compiled: dict[str, Any], runner: dict[str, Any], rendered: list[Manifest]) -> None:
    """Every step gets the CA settings of the env file; the CA itself reaches it read-only at /etc/homeci,
    from the MutatingAdmissionPolicy the umbrella renders (applied when the API server admits the pod, so
    tests/sim/test_build_policies.py proves the mount) or, with hostPath delivery, from the runner's
    DRONE_RUNNER_VOLUMES (checked in the compiled pod here)."""
    dotenv = _steps_env(runner)
    pod = compiled["pod"]
    containers = pod["spec"]["containers"]
    assert len(containers) == len(compiled["spec"]["steps"]), "one container per step (clone included)"
    for c in containers:
        env = {e["name"]: e.get("value") for e in c.get("env") or []}
        for key, value in dotenv.items():
            assert env.get(key) == value, (
                f"step container {c['name']} env {key}={env.get(key)!r}, want {value!r}"
            )
    assert dotenv.get("HOMECI_CA_FILE", "").startswith("/etc/homeci/"), "steps.env HOMECI_CA_FILE"
    if not runner["env"].get("DRONE_RUNNER_VOLUMES"):
        policies = [m for m in rendered
                    if m.kind == "MutatingAdmissionPolicy" and m.name.endswith("-build-ca")]
        assert policies, "no DRONE_RUNNER_VOLUMES and no MutatingAdmissionPolicy: steps would have no CA"
        expression = policies[0].obj["spec"]["mutations"][0]["applyConfiguration"]["expression"]
        assert 'mountPath: "/etc/homeci"' in expression and "readOnly: true" in expression, expression
        host_volumes = [v for v in pod["spec"].get("volumes") or [] if v.get("hostPath")]
        assert not host_volumes, f"the compiled pod mounts host paths: {host_volumes}"
        return
    host, container_path, _ = _ca_volume(runner)
    host_volumes_names = {v["name"] for v in pod["spec"].get("volumes") or []
                          if (v.get("hostPath") or {}).get("path") == host}
    assert host_volumes_names, f"compiled pod has no hostPath volume for {host}"
    for c in containers:
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
        assert mounts.get(container_path) in host_volumes_names, (
            f"step container {c['name']} does not mount the CA at {container_path}"
        )


def test_kaniko_trusts_the_registry_through_the_mounted_ca(compiled: dict[str, Any],
                                                           runner: dict[str, Any]) -> None:
    ca_file = _steps_env(runner).get("HOMECI_CA_FILE", "")
    build = next(s for s in compiled["pipeline"]["steps"] if "kaniko" in str(s.get("image")))
    cert = str(build["settings"]["registry_certificate"])
    registry, _, path = cert.partition("=")
    assert path == ca_file, f"kaniko registry_certificate {cert!r} names a file steps do not have ({ca_file})"
    assert _steps_env(runner).get("HOMECI_REGISTRY") == registry, (
        f"kaniko pushes to {registry!r} but the runner env names another registry host"
    )


def test_step_images_are_pinned(compiled: dict[str, Any]) -> None:
    for step in compiled["spec"]["steps"]:
        image = str(step["image"])
        name, _, tag = image.rpartition(":")
        assert name and tag and "/" not in tag and tag != "latest", (
            f"pipeline step {step['name']} runs image {image!r}: pin a tag"
            + (" (set DRONE_IMAGE_CLONE on the runner)" if step["name"] == "clone" else "")
        )


def test_limits_and_requests_follow_the_template_and_runner_defaults(compiled: dict[str, Any],
                                                                     runner: dict[str, Any]) -> None:
    env = runner["env"]
    default_cpu = float(env.get("DRONE_RESOURCE_LIMIT_CPU", "0"))
    default_mem = _runner_size(env.get("DRONE_RESOURCE_LIMIT_MEMORY", "0"))
    declared = {s["name"]: (s.get("resources") or {}).get("limits") or {}
                for s in compiled["pipeline"]["steps"]}
    by_id = {s["id"]: s["name"] for s in compiled["spec"]["steps"]}
    total_cpu = total_mem = 0.0
    for c in compiled["pod"]["spec"]["containers"]:
        step = by_id[c["name"]]
        limits = (c.get("resources") or {}).get("limits") or {}
        assert "cpu" in limits and "memory" in limits, f"step {step} container has no cpu+memory limits"
        want = declared.get(step) or {}
        want_cpu = float(want["cpu"]) if "cpu" in want else default_cpu
        want_mem = _runner_size(str(want["memory"])) if "memory" in want else default_mem
        assert _quantity(limits["cpu"], cpu=True) == want_cpu, f"step {step} cpu limit {limits['cpu']}"
        assert _quantity(limits["memory"], cpu=False) == want_mem, (
            f"step {step} memory limit {limits['memory']}"
        )
        requests = (c.get("resources") or {}).get("requests") or {}
        total_cpu += _quantity(requests.get("cpu", 0), cpu=True)
        total_mem += _quantity(requests.get("memory", 0), cpu=False)
    # The runner splits the stage request (DRONE_RESOURCE_REQUEST_*) across the step containers.
    assert total_cpu == pytest.approx(float(env["DRONE_RESOURCE_REQUEST_CPU"]), abs=len(by_id)), (
        f"step requests sum to {total_cpu}m, runner DRONE_RESOURCE_REQUEST_CPU is "
        f"{env['DRONE_RESOURCE_REQUEST_CPU']}"
    )
    assert total_mem == pytest.approx(_runner_size(env["DRONE_RESOURCE_REQUEST_MEMORY"]), rel=0.05), (
        f"step requests sum to {total_mem:.0f} bytes, runner DRONE_RESOURCE_REQUEST_MEMORY is "
        f"{env['DRONE_RESOURCE_REQUEST_MEMORY']}"
    )


def test_only_rbac_keeps_pipelines_in_the_build_namespace(runner: dict[str, Any], pipeline_text: str,
                                                         rendered: list[Manifest], tmp_path: Path) -> None:
    """The runner's DRONE_NAMESPACE_RULES only guard the namespaces they list: a repository naming
    another namespace passes the real linter. So the runner's RBAC must be what stops it: the runner's
    ServiceAccount may create pods in the build namespace only."""
    pipeline = yaml.safe_load(pipeline_text)
    pipeline["metadata"] = {"namespace": "kube-system"}
    proc = _compile(runner["env"], yaml.safe_dump(pipeline), tmp_path)
    assert proc.returncode == 0, f"the runner's linter now refuses other namespaces: {proc.stderr.strip()}"
    pod = next(d for d in yaml.safe_load_all(proc.stdout) if d and d.get("kind") == "Pod")
    assert pod["metadata"]["namespace"] == "kube-system"

    build_ns = runner["env"]["DRONE_NAMESPACE_DEFAULT"]
    sa = runner["pod"].spec.get("serviceAccountName")
    roles = {(m.kind, m.namespace, m.name): m for m in rendered if m.kind in ("Role", "ClusterRole")}
    allowed: list[str] = []
    for binding in rendered:
        if binding.kind not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = binding.obj.get("subjects") or []
        if not any(s.get("kind") == "ServiceAccount" and s.get("name") == sa for s in subjects):
            continue
        ref = binding.obj["roleRef"]
        key = (ref["kind"], binding.namespace if ref["kind"] == "Role" else None, ref["name"])
        role = roles.get(key)
        assert role is not None, f"{binding.ref} binds {ref['kind']}/{ref['name']}, which is not rendered"
        for rule in role.obj.get("rules") or []:
            if "pods" in (rule.get("resources") or []) and {"create", "*"} & set(rule.get("verbs") or []):
                cluster = binding.kind == "ClusterRoleBinding"
                allowed.append("cluster-wide" if cluster else str(binding.namespace))
    assert allowed == [build_ns], (
        f"ServiceAccount {sa} may create pods in {allowed or 'no namespace'}; only {build_ns} is safe, "
        "because"
        "DRONE_NAMESPACE_RULES does not stop pipelines that name another namespace"
    )


def test_upstream_compile_command_agrees(runner: dict[str, Any], pipeline_text: str, compiled: dict[str, Any],
                                         tmp_path: Path) -> None:
    """Cross-check homeci-runner-compile against upstream's own `drone-runner-kube compile`, fed the
    same rendered runner settings as flags (it has none for namespace or service account): both must
    produce the same step images, limits and mounts."""
    env = runner["env"]
    source = tmp_path / ".drone.yml"
    source.write_text(pipeline_text)
    pipeline = yaml.safe_load(pipeline_text)
    args = [str(binary("drone-runner-kube")), "compile", f"--source={source}",
            f"--stage-name={pipeline['name']}", f"--repo-slug={REPO}",
            f"--limit-cpu={int(float(env['DRONE_RESOURCE_LIMIT_CPU']))}",
            f"--limit-memory={int(_runner_size(env['DRONE_RESOURCE_LIMIT_MEMORY']) // 2**20)}",
            f"--request-cpu={int(float(env['DRONE_RESOURCE_REQUEST_CPU']))}",
            f"--request-memory={int(_runner_size(env['DRONE_RESOURCE_REQUEST_MEMORY']) // 2**20)}"]
    for item in env.get("DRONE_RUNNER_VOLUMES", "").split(","):
        if item:
            host, _, container = item.partition(":")
            args.append(f"--volumes={host}={container.split(':')[0]}")
    for key, value in _steps_env(runner).items():
        args.append(f"--environ={key}={value}")
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    assert proc.returncode == 0, f"drone-runner-kube compile failed: {proc.stderr.strip()}"
    upstream = json.loads(proc.stdout)

    def summary(spec: dict[str, Any]) -> dict[str, Any]:
        return {s["name"]: (s["image"], s.get("resources", {}).get("limits"),
                            sorted(v.get("path", "") for v in s.get("volumes") or []))
                for s in spec["steps"]}

    ours, theirs = summary(compiled["spec"]), summary(upstream)
    if "clone" in theirs and "clone" in ours and ours["clone"][0] != theirs["clone"][0]:
        # DRONE_IMAGE_CLONE has no compile flag: compare the rest of the clone step only.
        theirs["clone"] = (ours["clone"][0], *theirs["clone"][1:])
    assert ours == theirs, f"homeci-runner-compile and upstream compile disagree:\n{ours}\n{theirs}"
