"""The Drone templates of charts/drone-pipelines, rendered like Drone renders them.

The text under test is what the hook Job registers (the chart's templates ConfigMap: chart defaults +
template file), rendered by Go's own text/template (homeci_testing.drone.GoTemplateRenderer, built-ins only)
with Drone's data shape {input, repo, build}, then parsed as YAML and checked as a Drone
`type: kubernetes` pipeline.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeci import manifests, paths, rendering
from homeci.errors import HomeciError
from homeci_testing import drone

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "drone-pipelines"
SAMPLE_APP = paths.sample_app()
RELEASE = "homeci-pipelines"
NAMESPACE = "homeci"
KUBE = "1.37.0"
TEMPLATE = "homeci-build-deploy.yaml"
EXPECTED_STEPS = ["test", "build", "deploy"]
SCENARIOS = [
    p
    for p in rendering.scenarios(CHART)
    if (yaml.safe_load(p.read_text()) or {}).get("registration", {}).get("enabled", True)
]

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="Go is needed to render Drone templates")


def values_of(scenario: Path) -> dict[str, Any]:
    return drone.chart_values(scenario, chart=CHART)


def registered_text(scenario: Path) -> str:
    objs = rendering.render(CHART, [scenario], release=RELEASE, namespace=NAMESPACE, kube_version=KUBE)
    cm = manifests.get(objs, "ConfigMap", f"{RELEASE}-templates")
    text: str = cm.obj["data"][TEMPLATE]
    return text


@pytest.fixture(scope="module")
def go() -> drone.GoTemplateRenderer:
    renderer = drone.GoTemplateRenderer()
    renderer.binary()
    return renderer


@pytest.fixture(scope="module")
def sample_drone_yml() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((SAMPLE_APP / ".drone.yml").read_text())
    return data


def render(
    go: drone.GoTemplateRenderer, scenario: Path, inputs: dict[str, Any], tmp_path: Path, **repo: Any
) -> dict[str, Any]:
    text = go.render(registered_text(scenario), drone.template_data(inputs, **repo), workdir=tmp_path)
    assert "<no value>" not in text, f"{TEMPLATE}: a missing input printed <no value>:\n{text}"
    return drone.parse_pipeline(text)


def steps_by_name(pipeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in pipeline["steps"]}


def assert_pinned(image: str, where: str) -> None:
    assert "${" not in image, f"{where}.image {image!r} must not depend on build variables"
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag and tag, f"{where}.image {image!r} has no tag: pin one"
    assert tag != "latest", f"{where}.image {image!r} uses latest: pin a version"


INPUT_CASES = {
    "sample-app": None,  # filled from the sample app's .drone.yml
    "no-inputs": {},
    "string-command": {"namespace": "apps", "test_commands": "make test", "deployment": "web"},
    "all-inputs": {
        "namespace": "apps",
        "deployment": "shop",
        "container": "server",
        "image": "registry.x.test/a/b",
        "registry": "registry.x.test",
        "dockerfile": "build/Dockerfile",
        "context": "src",
        "test_image": "golang:1.26.8-alpine",
        "test_commands": ["go vet ./...", "go test ./..."],
        "branch": "release",
        "pipeline_name": "ship",
        "service_account": "custom-sa",
        "ca_file": "/etc/ssl/certs/other.crt",
        "rollout_timeout": "10m",
        "test_cpu": 2000,
        "test_memory": "1GiB",
        "build_cpu": 1500,
        "build_memory": "2GiB",
        "deploy_cpu": 100,
        "deploy_memory": "64MiB",
    },
}


@pytest.mark.parametrize("case", list(INPUT_CASES))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=rendering.scenario_name)
def test_template_is_a_kubernetes_pipeline(
    go: drone.GoTemplateRenderer, scenario: Path, case: str, sample_drone_yml: dict[str, Any], tmp_path: Path
) -> None:
    inputs = sample_drone_yml["data"] if INPUT_CASES[case] is None else INPUT_CASES[case]
    assert inputs is not None
    pipeline = render(go, scenario, inputs, tmp_path)
    where = f"{TEMPLATE} ({rendering.scenario_name(scenario)}, inputs {case})"
    assert pipeline.get("kind") == "pipeline", f"{where}: kind is {pipeline.get('kind')!r}"
    assert pipeline.get("type") == "kubernetes", f"{where}: type is {pipeline.get('type')!r}"
    assert [s.get("name") for s in pipeline["steps"]] == EXPECTED_STEPS, f"{where}: steps out of order"
    assert pipeline.get("service_account_name"), f"{where}: service_account_name missing"
    # Pipeline-level limits are a linter error in the Kubernetes runner; per-step limits are required.
    assert "limits" not in (pipeline.get("resources") or {}), f"{where}: resources.limits at pipeline level"
    for step in pipeline["steps"]:
        sw = f"{where} steps[{step['name']}]"
        assert_pinned(step["image"], sw)
        limits = (step.get("resources") or {}).get("limits") or {}
        assert isinstance(limits.get("cpu"), int) and limits["cpu"] > 0, (
            f"{sw}.resources.limits.cpu: {limits}"
        )
        assert re.fullmatch(r"\d+(\.\d+)?([KMGT]i?B)?", str(limits.get("memory", ""))), (
            f"{sw}.resources.limits.memory: {limits}"
        )
        assert not step.get("privileged"), f"{sw}.privileged must not be set (kaniko needs no privilege)"
        assert not step.get("volumes"), f"{sw}.volumes: untrusted repositories cannot mount volumes"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=rendering.scenario_name)
def test_sample_app_pipeline_wiring(
    go: drone.GoTemplateRenderer, scenario: Path, sample_drone_yml: dict[str, Any], tmp_path: Path
) -> None:
    values = values_of(scenario)
    pipeline = render(go, scenario, sample_drone_yml["data"], tmp_path)
    steps = steps_by_name(pipeline)
    registry = values["registry"]["host"] or f"registry.{values['stack']['domain']}"
    namespace = sample_drone_yml["data"]["namespace"]
    where = f"{TEMPLATE} ({rendering.scenario_name(scenario)})"

    assert pipeline["service_account_name"] == f"{RELEASE}-deploy-{namespace}", (
        f"{where}: service_account_name is not the deployer of {namespace}"
    )
    assert pipeline["trigger"] == {"event": ["push"], "branch": ["main"]}, f"{where}: trigger"
    if values["pipeline"]["hostAliases"]:
        assert pipeline["host_aliases"] == values["pipeline"]["hostAliases"], f"{where}: host_aliases"
    else:
        assert "host_aliases" not in pipeline, f"{where}: host_aliases without pipeline.hostAliases"

    test = steps["test"]
    assert test["image"] == sample_drone_yml["data"]["test_image"], f"{where} steps[test].image"
    assert test["commands"] == sample_drone_yml["data"]["test_commands"], f"{where} steps[test].commands"

    build = steps["build"]["settings"]
    image = f"{registry}/${{DRONE_REPO,,}}"
    kaniko = values["pipeline"]["images"]["kaniko"]
    # one image shape: <registry>/<repository>:<tag>[@<digest>] (the step images now carry registry too)
    wanted = (f"{kaniko['registry']}/{kaniko['repository']}:{kaniko['tag']}"
              + (f"@{kaniko['digest']}" if kaniko["digest"] else ""))
    assert steps["build"]["image"] == wanted, f"{where} steps[build].image"
    assert build["registry"] == registry, f"{where} steps[build].settings.registry"
    assert build["repo"] == image, f"{where} steps[build].settings.repo"
    assert build["tags"] == ["${DRONE_COMMIT_SHA}"], f"{where} steps[build].settings.tags: commit SHA only"
    assert build["registry_certificate"] == f"{registry}={values['pipeline']['caFile']}", (
        f"{where} steps[build].settings.registry_certificate must trust the homeci CA"
    )
    assert build["username"] == {"from_secret": values["pipeline"]["secretNames"]["username"]}
    assert build["password"] == {"from_secret": values["pipeline"]["secretNames"]["password"]}
    assert not any(k.startswith(("skip_tls", "insecure")) for k in build), (
        f"{where} steps[build].settings: TLS verification must stay on"
    )

    deploy = steps["deploy"]
    env = deploy["environment"]
    assert env == {
        "DEPLOY_NAMESPACE": namespace,
        "DEPLOY_NAME": "sample-app",
        "DEPLOY_CONTAINER": "sample-app",
        "DEPLOY_IMAGE": f"{image}:${{DRONE_COMMIT_SHA}}",
        "DEPLOY_REPOSITORY": image,
        "DEPLOY_TAG": "${DRONE_COMMIT_SHA}",
        "DEPLOY_MANIFESTS": values["pipeline"]["manifests"],
        "ROLLOUT_TIMEOUT": values["pipeline"]["rolloutTimeout"],
    }, f"{where} steps[deploy].environment"
    mirror = values["pipeline"]["registryMirror"]
    expected_mirror = registry if mirror["host"] == "default" else mirror["host"]
    assert build.get("registry_mirrors", "") == expected_mirror, (
        f"{where} steps[build].settings.registry_mirrors"
    )
    assert build.get("skip_default_registry_fallback", False) == (
        bool(expected_mirror) and mirror["skipDefaultRegistryFallback"]
    ), f"{where} steps[build].settings.skip_default_registry_fallback"
    script = "\n".join(deploy["commands"])
    assert "set image" in script and "rollout status" in script, f"{where} steps[deploy].commands"
    assert "kubectl apply -k" in script, f"{where} steps[deploy].commands must apply the manifests folder"
    assert "--timeout=" in script and "exit 1" in script, (
        f"{where} steps[deploy].commands must fail the build when the rollout does not finish"
    )


def test_all_inputs_override_defaults(go: drone.GoTemplateRenderer, tmp_path: Path) -> None:
    inputs = INPUT_CASES["all-inputs"]
    assert inputs is not None
    pipeline = render(go, SCENARIOS[0], inputs, tmp_path)
    steps = steps_by_name(pipeline)
    assert pipeline["name"] == "ship" and pipeline["service_account_name"] == "custom-sa"
    assert pipeline["trigger"]["branch"] == ["release"]
    assert steps["test"]["commands"] == ["go vet ./...", "go test ./..."]
    assert steps["build"]["settings"]["repo"] == "registry.x.test/a/b"
    assert steps["build"]["settings"]["dockerfile"] == "build/Dockerfile"
    assert steps["build"]["settings"]["context"] == "src"
    assert steps["build"]["settings"]["registry_certificate"] == "registry.x.test=/etc/ssl/certs/other.crt"
    assert steps["build"]["resources"]["limits"] == {"cpu": 1500, "memory": "2GiB"}
    assert steps["deploy"]["environment"]["DEPLOY_CONTAINER"] == "server"
    assert steps["deploy"]["environment"]["DEPLOY_IMAGE"] == "registry.x.test/a/b:${DRONE_COMMIT_SHA}"


def test_manifests_input_none_keeps_set_image_only(go: drone.GoTemplateRenderer, tmp_path: Path) -> None:
    """`manifests: none` turns the apply off: the step only updates an existing Deployment."""
    pipeline = render(go, SCENARIOS[0], {"namespace": "apps", "manifests": "none"}, tmp_path)
    env = steps_by_name(pipeline)["deploy"]["environment"]
    assert env["DEPLOY_MANIFESTS"] == "", "steps[deploy].environment.DEPLOY_MANIFESTS with manifests: none"
    pipeline = render(go, SCENARIOS[0], {"namespace": "apps", "manifests": "deploy/k8s"}, tmp_path)
    env = steps_by_name(pipeline)["deploy"]["environment"]
    assert env["DEPLOY_MANIFESTS"] == "deploy/k8s", "steps[deploy].environment.DEPLOY_MANIFESTS from input"


def test_defaults_follow_the_repository(go: drone.GoTemplateRenderer, tmp_path: Path) -> None:
    """No inputs: deploy to the owner's namespace, Deployment and container named like the repo."""
    pipeline = render(go, SCENARIOS[0], {}, tmp_path, owner="team", name="shop", branch="trunk")
    env = steps_by_name(pipeline)["deploy"]["environment"]
    assert (env["DEPLOY_NAMESPACE"], env["DEPLOY_NAME"], env["DEPLOY_CONTAINER"]) == ("team", "shop", "shop")
    assert pipeline["service_account_name"] == f"{RELEASE}-deploy-team"
    assert pipeline["trigger"]["branch"] == ["trunk"]


def test_hostile_inputs_stay_data(go: drone.GoTemplateRenderer, tmp_path: Path) -> None:
    """Inputs are quoted: YAML or shell syntax in a value cannot add keys or steps."""
    evil = 'x"\nprivileged: true\n- name: pwn'
    pipeline = render(
        go, SCENARIOS[0], {"namespace": "apps", "deployment": evil, "test_commands": [evil]}, tmp_path
    )
    steps = steps_by_name(pipeline)
    assert list(steps) == EXPECTED_STEPS
    assert steps["deploy"]["environment"]["DEPLOY_NAME"] == evil
    assert steps["test"]["commands"] == [evil]
    assert not any(s.get("privileged") for s in pipeline["steps"])


def test_renderer_rejects_functions_drone_may_lack(go: drone.GoTemplateRenderer, tmp_path: Path) -> None:
    """The Go renderer has only built-ins, so the template check above proves we use nothing else."""
    with pytest.raises(HomeciError, match='function "upper" not defined'):
        go.render("{{ upper .input.x }}", drone.template_data({"x": "a"}), workdir=tmp_path)


def test_sample_drone_yml_loads_the_template(sample_drone_yml: dict[str, Any]) -> None:
    text = (SAMPLE_APP / ".drone.yml").read_text()
    assert drone.is_template_config(text), (
        ".drone.yml: Drone needs a line `kind: template` to load a template"
    )
    assert len([ln for ln in text.splitlines() if ln.strip()]) <= 7, ".drone.yml should stay about five lines"
    assert sample_drone_yml["kind"] == "template"
    assert sample_drone_yml["load"] in drone.template_files(), (
        f".drone.yml load: {sample_drone_yml['load']} is not in charts/drone-pipelines/files/templates"
    )
    known = drone.template_inputs(drone.template_files()[sample_drone_yml["load"]].read_text())
    unknown = set(sample_drone_yml["data"]) - known
    assert not unknown, (
        f".drone.yml data: {sorted(unknown)} are not inputs of the template (known: {sorted(known)})"
    )


def test_sample_app_targets_a_configured_namespace(sample_drone_yml: dict[str, Any]) -> None:
    """The default scenario is the stack the e2e tests install: the sample app's namespace is a target."""
    values = values_of(CHART / "ci" / "default-values.yaml")
    targets = {t["namespace"]: t["owners"] for t in values["targets"]}
    ns = sample_drone_yml["data"]["namespace"]
    assert ns in targets, f".drone.yml namespace {ns!r} is not a target of ci/default-values.yaml"
    deployment = yaml.safe_load((SAMPLE_APP / "k8s" / "deployment.yaml").read_text())
    assert deployment["metadata"]["namespace"] == ns
    assert deployment["metadata"]["name"] == "sample-app"
    containers = [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert containers == ["sample-app"], "k8s/deployment.yaml: the deploy step sets container sample-app"
    pull = [s["name"] for s in deployment["spec"]["template"]["spec"]["imagePullSecrets"]]
    assert pull == [values["registry"]["pullSecretName"]], "k8s/deployment.yaml imagePullSecrets"


def test_template_names_are_valid_for_drone() -> None:
    files = drone.template_files()
    assert TEMPLATE in files
    for name in files:
        assert name.endswith((".yaml", ".yml")), f"{name}: Drone accepts only .yaml/.yml YAML templates"


@pytest.mark.parametrize("version", ["1.30", "1.37"])
def test_sample_app_manifests_are_valid_kubernetes(version: str) -> None:
    """k8s/*.yaml of the sample app validate strictly against the oldest and newest supported Kubernetes."""
    from homeci.lint import kube

    objs = manifests.parse("\n---\n".join(p.read_text() for p in sorted((SAMPLE_APP / "k8s").glob("*.yaml"))))
    assert {m.kind for m in objs} == {"Deployment", "Service", "Ingress"}
    report = kube.validate(objs, version)
    assert not report.errors, "\n".join(report.errors)
    ingress = next(m for m in objs if m.kind == "Ingress")
    assert ingress.obj["spec"]["rules"][0]["host"] == "sample-app.homeci.localhost"
    assert ingress.obj["spec"]["tls"][0]["hosts"] == ["sample-app.homeci.localhost"], "Ingress must serve TLS"


KUBECTL_SHIM = """#!/bin/sh
# Stands in for the API server only: `apply -k DIR` runs the real kubectl's kustomize and keeps what it
# would send; every other call is recorded.
echo "$*" >> "$SHIM_LOG"
if [ "$1" = "apply" ] && [ "$2" = "-k" ]; then exec "$REAL_KUBECTL" kustomize "$3" > "$SHIM_OUT"; fi
if [ "$1" = "--namespace" ] && [ "$3" = "get" ]; then exit "${SHIM_GET_RC:-0}"; fi
exit 0
"""


# drone-runner-kube v1.0.0-rc.5 engine/compiler/script.go: the step's command for a posix shell.
RUNNER_ENTRYPOINT = 'echo "$DRONE_SCRIPT" | /bin/sh'


@pytest.mark.parametrize("scenario", SCENARIOS, ids=rendering.scenario_name)
def test_step_commands_survive_the_runners_echo(
    go: drone.GoTemplateRenderer, tmp_path: Path, scenario: Path, sample_drone_yml: dict[str, Any]
) -> None:
    """The runner pipes the script through `echo`; dash's echo reads backslash escapes, so a `\\n` in a
    command became a newline and broke the deploy step's jsonpath (seen on the local real node)."""
    inputs = dict(sample_drone_yml["data"])
    pipeline = render(go, scenario, inputs, tmp_path, owner="homeci", name="sample-app")
    for name, step in steps_by_name(pipeline).items():
        for i, command in enumerate(step.get("commands") or []):
            assert "\\" not in command, f"step {name} commands[{i}] has a backslash: {command!r}"


def _drone_subst(text: str, env: dict[str, str]) -> str:
    """What Drone does to a step before it runs: ${VAR} (and ${VAR,,}) from its variables, $$ -> $."""
    for key, value in env.items():
        text = text.replace("${" + key + ",,}", value.lower()).replace("${" + key + "}", value)
    return text.replace("$$", "$")


def _run_deploy(go: drone.GoTemplateRenderer, tmp_path: Path, inputs: dict[str, Any], app: Path,
                get_rc: int = 0) -> tuple[int, str, str, str]:
    """Run the deploy step's first command in ``app`` with the real kubectl's kustomize.

    Returns (exit code, kubectl calls, the objects `apply -k` would send, stderr)."""
    from homeci import toolchain

    try:
        real = toolchain.resolve("kubectl")
    except HomeciError as exc:
        pytest.skip(f"kubectl not built: {exc}")
    drone_env = {"DRONE_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
                 "DRONE_REPO": "homeci/Sample-App"}
    pipeline = render(go, SCENARIOS[0], inputs, tmp_path, owner="homeci", name="sample-app")
    step = steps_by_name(pipeline)["deploy"]
    env = {k: _drone_subst(str(v), drone_env) for k, v in step["environment"].items()}
    script = _drone_subst(step["commands"][0], drone_env)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kubectl").write_text(KUBECTL_SHIM)
    (bindir / "kubectl").chmod(0o755)
    log, out = tmp_path / "calls.log", tmp_path / "applied.yaml"
    log.touch()
    run_env = {**env, "PATH": f"{bindir}:/usr/bin:/bin", "REAL_KUBECTL": str(real), "SHIM_LOG": str(log),
               "SHIM_OUT": str(out), "SHIM_GET_RC": str(get_rc), "TMPDIR": str(tmp_path),
               "HOME": os.environ["HOME"]}
    # As the Kubernetes runner starts commands: the script in DRONE_SCRIPT, piped through echo.
    proc = subprocess.run(["sh", "-c", RUNNER_ENTRYPOINT], cwd=app, capture_output=True, text=True,
                          check=False, env={**run_env, "DRONE_SCRIPT": script})
    return proc.returncode, log.read_text(), out.read_text() if out.exists() else "", proc.stderr


def test_deploy_step_applies_the_apps_manifests_with_the_built_image(
    go: drone.GoTemplateRenderer, tmp_path: Path, sample_drone_yml: dict[str, Any]
) -> None:
    """The first push creates the app: k8s/ applied into the target namespace, image pinned to the SHA."""
    inputs = dict(sample_drone_yml["data"], namespace="team-a")
    rc, calls, applied, err = _run_deploy(go, tmp_path, inputs, SAMPLE_APP)
    assert rc == 0, f"deploy step failed: {err}"
    assert calls.startswith("apply -k "), f"deploy step kubectl calls: {calls}"
    objs = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(applied) if o}
    wanted = {("Deployment", "sample-app"), ("Service", "sample-app"), ("Ingress", "sample-app")}
    assert set(objs) >= wanted, f"objects applied: {sorted(objs)}"
    for (kind, name), obj in objs.items():
        assert obj["metadata"].get("namespace") == "team-a", f"{kind}/{name}.metadata.namespace"
    container = objs[("Deployment", "sample-app")]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == (
        "registry.homeci.localhost/homeci/sample-app:0123456789abcdef0123456789abcdef01234567"
    ), "Deployment/sample-app containers[sample-app].image is not pinned to the built commit"


def test_deploy_step_without_manifests_sets_the_image_or_fails_clearly(
    go: drone.GoTemplateRenderer, tmp_path: Path
) -> None:
    empty = tmp_path / "app"
    empty.mkdir()
    rc, calls, _, err = _run_deploy(go, tmp_path, {"namespace": "apps"}, empty, get_rc=1)
    assert rc == 1 and "no folder k8s/" in err, f"missing manifests and Deployment: rc {rc}, stderr {err!r}"
    (tmp_path / "calls.log").write_text("")
    shutil.rmtree(tmp_path / "bin")
    rc, calls, _, err = _run_deploy(go, tmp_path, {"namespace": "apps"}, empty, get_rc=0)
    assert rc == 0 and "set image deployment/sample-app" in calls, f"kubectl calls: {calls!r} ({err})"


def test_renderer_reads_repo_and_build_by_go_field_name_like_drone(tmp_path: Path) -> None:
    """Drone passes .repo/.build as Go structs (drone-go's drone.Repo/drone.Build): `.repo.Name` works and
    `.repo.name` fails — the real Drone 2.28.2 refused homeci-build-deploy.yaml for exactly that."""
    go = drone.GoTemplateRenderer()
    data = drone.template_data({}, owner="o", name="app", branch="trunk", commit="c0ffee")
    text = go.render("{{ .repo.Namespace }}/{{ .repo.Name }}@{{ .repo.Branch }} {{ .build.After }}", data,
                     workdir=tmp_path / "ok")
    assert text == "o/app@trunk c0ffee"
    with pytest.raises(HomeciError, match="can't evaluate field name"):
        go.render("{{ .repo.name }}", data, workdir=tmp_path / "json-name")
