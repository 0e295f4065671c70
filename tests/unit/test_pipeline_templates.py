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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from homeci import contract, manifests, paths, rendering
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
OTHER_BRANCH_STEPS = ["test", "build", "no-deploy"]
DIGEST_FILE = "/drone/src/.homeci/image"
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
        "ca_file": "/etc/ssl/certs/other.crt",
        "rollout_timeout": "10m",
        "test_cpu": 2000,
        "test_memory": "1GiB",
        "build_cpu": 1500,
        "build_memory": "2GiB",
        "deploy_cpu": 100,
        "deploy_memory": "64MiB",
        "parallel_build": True,
    },
}


@pytest.mark.parametrize("case", list(INPUT_CASES))
@pytest.mark.parametrize("scenario", SCENARIOS, ids=rendering.scenario_name)
def test_template_is_a_kubernetes_pipeline(
    go: drone.GoTemplateRenderer, scenario: Path, case: str, sample_drone_yml: dict[str, Any], tmp_path: Path
) -> None:
    inputs = sample_drone_yml["data"] if INPUT_CASES[case] is None else INPUT_CASES[case]
    assert inputs is not None
    # the push goes to the branch that deploys (input `branch`, else the default branch)
    pipeline = render(go, scenario, inputs, tmp_path, pushed=str(inputs.get("branch") or "main"))
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
    owner = values["targets"][0]["owners"][0]
    pipeline = render(go, scenario, sample_drone_yml["data"], tmp_path, owner=owner)
    steps = steps_by_name(pipeline)
    stack = values["stack"]
    registry = values["registry"]["host"] or f"{stack['hosts']['registry']}.{stack['domain']}"
    namespace = sample_drone_yml["data"]["namespace"]
    where = f"{TEMPLATE} ({rendering.scenario_name(scenario)}, owner {owner})"

    assert pipeline["service_account_name"] == contract.deployer_account(owner, RELEASE), (
        f"{where}: service_account_name is not the deployer of the repository's owner {owner}"
    )
    assert pipeline["trigger"] == {"event": ["push"]}, f"{where}: trigger must take pushes of every branch"
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
    assert build["image_name_with_digest_file"] == DIGEST_FILE, (
        f"{where} steps[build].settings.image_name_with_digest_file: the deploy step pins that digest"
    )
    assert not build.get("no_push"), f"{where} steps[build].settings.no_push on the deploy branch"
    assert build["registry_certificate"] == f"{registry}={values['pipeline']['caFile']}", (
        f"{where} steps[build].settings.registry_certificate must trust the homeci CA"
    )
    assert build["username"] == {"from_secret": values["pipeline"]["secretNames"]["username"]}
    assert build["password"] == {"from_secret": values["pipeline"]["secretNames"]["password"]}
    assert not any(k.startswith(("skip_tls", "insecure")) for k in build), (
        f"{where} steps[build].settings: TLS verification must stay on"
    )
    assert build.get("skip_push_permission_check") is True, (
        f"{where} steps[build].settings.skip_push_permission_check: kaniko's early upload probe costs two "
        "authenticated registry requests on every push"
    )
    assert steps["build"].get("environment") == {"BENCHMARK_FILE": "/dev/stdout"}, (
        f"{where} steps[build].environment: kaniko's timings close the build log (homeci smoke reads them)"
    )

    deploy = steps["deploy"]
    env = deploy["environment"]
    assert env == {
        "DEPLOY_NAMESPACE": namespace,
        "DEPLOY_NAME": "sample-app",
        "DEPLOY_CONTAINER": "sample-app",
        "DEPLOY_REPOSITORY": image,
        "DEPLOY_TAG": "${DRONE_COMMIT_SHA}",
        "DEPLOY_DIGEST_FILE": DIGEST_FILE,
        "DEPLOY_MANIFESTS": values["pipeline"]["manifests"],
        "DEPLOY_INGRESS_CLASS": values["stack"]["ingressClass"],
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
    assert "auth can-i" in script, f"{where} steps[deploy].commands must ask RBAC before writing"
    assert "set image" in script and "rollout status" in script, f"{where} steps[deploy].commands"
    assert 'kubectl apply -f "$$work/objects.yaml"' in script, (
        f"{where} steps[deploy].commands must apply the manifests folder as kustomize rendered it")
    assert 'export KUBECACHEDIR="$$work/kube-cache"' in script.splitlines()[3:6], (
        f"{where} steps[deploy].commands: every kubectl call must share one discovery cache, set first")
    assert "--timeout=" in script and "exit 1" in script, (
        f"{where} steps[deploy].commands must fail the build when the rollout does not finish"
    )


def test_all_inputs_override_defaults(go: drone.GoTemplateRenderer, tmp_path: Path) -> None:
    inputs = INPUT_CASES["all-inputs"]
    assert inputs is not None
    pipeline = render(go, SCENARIOS[0], inputs, tmp_path, pushed="release")
    steps = steps_by_name(pipeline)
    assert pipeline["name"] == "ship"
    assert pipeline["service_account_name"] == contract.deployer_account("homeci", RELEASE)
    assert list(steps) == EXPECTED_STEPS, "a push to input branch `release` deploys"
    assert steps["test"]["commands"] == ["go vet ./...", "go test ./..."]
    assert steps["build"]["settings"]["repo"] == "registry.x.test/a/b"
    assert steps["build"]["settings"]["dockerfile"] == "build/Dockerfile"
    assert steps["build"]["settings"]["context"] == "src"
    assert steps["build"]["settings"]["registry_certificate"] == "registry.x.test=/etc/ssl/certs/other.crt"
    assert steps["build"]["resources"]["limits"] == {"cpu": 1500, "memory": "2GiB"}
    assert steps["deploy"]["environment"]["DEPLOY_CONTAINER"] == "server"
    assert steps["deploy"]["environment"]["DEPLOY_REPOSITORY"] == "registry.x.test/a/b"


def test_manifests_input_none_keeps_set_image_only(go: drone.GoTemplateRenderer, tmp_path: Path) -> None:
    """`manifests: none` turns the apply off: the step only updates an existing Deployment."""
    pipeline = render(go, SCENARIOS[0], {"namespace": "apps", "manifests": "none"}, tmp_path)
    env = steps_by_name(pipeline)["deploy"]["environment"]
    assert env["DEPLOY_MANIFESTS"] == "", "steps[deploy].environment.DEPLOY_MANIFESTS with manifests: none"
    pipeline = render(go, SCENARIOS[0], {"namespace": "apps", "manifests": "deploy/k8s"}, tmp_path)
    env = steps_by_name(pipeline)["deploy"]["environment"]
    assert env["DEPLOY_MANIFESTS"] == "deploy/k8s", "steps[deploy].environment.DEPLOY_MANIFESTS from input"


def test_defaults_follow_the_repository(go: drone.GoTemplateRenderer, tmp_path: Path) -> None:
    """No inputs: deploy to the owner's namespace, Deployment and container named like the repo, on the
    repository's default branch. `team` is no owner of the scenario: it has no deployer, so its pods run
    as `default` and the deploy step's RBAC check refuses (see the deploy-step tests)."""
    pipeline = render(go, SCENARIOS[0], {}, tmp_path, owner="team", name="shop", branch="trunk")
    env = steps_by_name(pipeline)["deploy"]["environment"]
    assert (env["DEPLOY_NAMESPACE"], env["DEPLOY_NAME"], env["DEPLOY_CONTAINER"]) == ("team", "shop", "shop")
    assert pipeline["service_account_name"] == "default"


OWNERS_SCENARIO = CHART / "ci" / "two-owners-values.yaml"


@pytest.mark.parametrize("owner", ["homeci", "Alice.Smith", "team_web", "alice-smith", "bob"])
def test_each_owner_runs_as_its_own_deployer(go: drone.GoTemplateRenderer, tmp_path: Path,
                                             owner: str) -> None:
    """The template picks the deployer by the exact Gogs owner name; a name that is not in
    targets[].owners (even one the runner would label alike, `alice-smith`) gets `default`."""
    values = values_of(OWNERS_SCENARIO)
    owners = {o for t in values["targets"] for o in t["owners"]}
    pipeline = render(go, OWNERS_SCENARIO, {"namespace": "alice"}, tmp_path, owner=owner)
    want = contract.deployer_account(owner, RELEASE) if owner in owners else "default"
    assert pipeline["service_account_name"] == want, f"owner {owner}: service_account_name"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=rendering.scenario_name)
def test_other_branches_build_without_push_and_say_why(
    go: drone.GoTemplateRenderer, scenario: Path, sample_drone_yml: dict[str, Any], tmp_path: Path
) -> None:
    """Issue 19: a push to a branch that does not deploy is still built (test + kaniko without push)
    and its last step says why nothing was deployed and how to change that, naming both branches."""
    pipeline = render(go, scenario, sample_drone_yml["data"], tmp_path, pushed="feature/login")
    where = f"{TEMPLATE} ({rendering.scenario_name(scenario)}, push to feature/login)"
    steps = steps_by_name(pipeline)
    assert list(steps) == OTHER_BRANCH_STEPS, f"{where}: steps {list(steps)}"
    assert pipeline["service_account_name"] == "default", (
        f"{where}: a build that deploys nothing needs no deployer"
    )
    build = steps["build"]["settings"]
    assert build.get("no_push") is True, f"{where} steps[build].settings.no_push"
    assert "image_name_with_digest_file" not in build, f"{where}: kaniko refuses a digest file without push"
    step = steps["no-deploy"]
    out = _run_commands(step, {"DRONE_BRANCH": "feature/login"}, tmp_path)
    assert out.returncode == 0, f"{where} steps[no-deploy] failed: {out.stderr}"
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2 and all(ln.startswith("homeci: ") for ln in lines), f"{where}: {out.stdout!r}"
    assert "feature/login" in lines[0] and "main" in lines[0], f"{where}: why: {lines[0]!r}"
    assert "branch: feature/login" in lines[1], f"{where}: how: {lines[1]!r}"


def test_branch_input_moves_the_deploy_branch(go: drone.GoTemplateRenderer, tmp_path: Path) -> None:
    """`branch: master` with Drone's default branch main: master deploys, main only builds."""
    inputs = {"namespace": "apps", "branch": "master"}
    master = steps_by_name(render(go, SCENARIOS[0], inputs, tmp_path, pushed="master"))
    main = steps_by_name(render(go, SCENARIOS[0], inputs, tmp_path, pushed="main"))
    assert list(master) == EXPECTED_STEPS and list(main) == OTHER_BRANCH_STEPS, (list(master), list(main))
    assert main["no-deploy"]["environment"]["HOMECI_DEPLOY_BRANCH"] == "master"


@pytest.mark.parametrize("parallel", [None, False, "false", True, "true"])
@pytest.mark.parametrize("pushed", ["main", "feature"])
def test_parallel_build_starts_the_build_beside_the_tests(go: drone.GoTemplateRenderer, tmp_path: Path,
                                                          parallel: object, pushed: str) -> None:
    """parallel_build: test and build both wait only for the clone (no depends_on: the runner makes them
    depend on clone once any step has one), and the last step waits for both; without it no step has
    depends_on, so the runner runs them one after another in order."""
    inputs: dict[str, Any] = {"namespace": "apps"}
    if parallel is not None:
        inputs["parallel_build"] = parallel
    steps = steps_by_name(render(go, SCENARIOS[0], inputs, tmp_path, pushed=pushed))
    last = "deploy" if pushed == "main" else "no-deploy"
    where = f"{TEMPLATE} (parallel_build {parallel!r}, push to {pushed})"
    assert list(steps) == ["test", "build", last], f"{where}: steps {list(steps)}"
    if str(parallel).lower() == "true":
        assert steps[last].get("depends_on") == ["test", "build"], f"{where}: steps[{last}].depends_on"
    else:
        assert all("depends_on" not in s for s in steps.values()), f"{where}: a step has depends_on"
    assert "depends_on" not in steps["test"] and "depends_on" not in steps["build"], (
        f"{where}: test and build must wait only for the clone")


@pytest.mark.parametrize(("inputs", "needle"), [
    ({"namespace": "apps", "service_account": "homeci-pipelines-deployer-bob"},
     "input service_account was removed"),
    ({"namspace": "apps"}, "unknown input namspace"),
    ({"namespace": "apps", "parallel_build": "yes"}, "parallel_build is yes; it takes true or false"),
])
def test_bad_inputs_fail_the_build_with_one_line(go: drone.GoTemplateRenderer, tmp_path: Path,
                                                 inputs: dict[str, Any], needle: str) -> None:
    """An input the template does not know, or the removed service_account, is never silently ignored:
    the build is one failing step that names it (before anything runs with the repository's code)."""
    pipeline = render(go, SCENARIOS[0], inputs, tmp_path)
    steps = steps_by_name(pipeline)
    assert list(steps) == ["inputs"], f"bad inputs {sorted(inputs)}: steps {list(steps)}"
    out = _run_commands(steps["inputs"], {}, tmp_path)
    assert out.returncode == 1 and needle in out.stderr, (
        f"{sorted(inputs)}: rc {out.returncode} {out.stderr!r}"
    )
    assert out.stderr.startswith("homeci: "), out.stderr


def test_known_inputs_are_the_ones_the_template_reads() -> None:
    """The template's list of accepted inputs (for the refusal above) equals what it reads."""
    text = drone.template_files()[TEMPLATE].read_text()
    listed = set(re.search(r'\$known := "([^"]+)"', text).group(1).split())  # type: ignore[union-attr]
    assert listed == drone.template_inputs(text), (
        f"{TEMPLATE}: $known {sorted(listed)} differs from the .input.* it reads "
        f"{sorted(drone.template_inputs(text))}"
    )


def _run_commands(step: dict[str, Any], extra_env: dict[str, str],
                  tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """A step's commands as the runner runs them (its environment, Drone's $$ escapes resolved)."""
    env = {k: _drone_subst(str(v), {}) for k, v in (step.get("environment") or {}).items()}
    script = _drone_subst("\n".join(step["commands"]), {})
    return subprocess.run(["sh", "-c", RUNNER_ENTRYPOINT], capture_output=True, text=True, check=False,
                          cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", **env, **extra_env, "DRONE_SCRIPT": script})


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
    settings = [ln for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert len(settings) <= 7, f".drone.yml should stay about five lines of settings, has {len(settings)}"
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
# Stands in for the API server only: `auth can-i` answers $SHIM_CANI (or fails with $SHIM_CANI_ERR),
# `kustomize DIR` runs the real kubectl's kustomize, `apply -f FILE` keeps what it would send;
# every call is recorded.
echo "$*" >> "$SHIM_LOG"
if [ "$1" = "auth" ]; then
  if [ -n "$SHIM_CANI_ERR" ]; then echo "$SHIM_CANI_ERR" >&2; exit 1; fi
  echo "${SHIM_CANI:-yes}"
  [ "${SHIM_CANI:-yes}" = yes ]
  exit $?
fi
if [ "$1" = "kustomize" ]; then exec "$REAL_KUBECTL" kustomize "$2"; fi
if [ "$1" = "apply" ] && [ "$2" = "-f" ]; then exec cp "$3" "$SHIM_OUT"; fi
if [ "$1" = "--namespace" ] && [ "$3" = "get" ]; then exit "${SHIM_GET_RC:-0}"; fi
exit 0
"""


# drone-runner-kube v1.0.0-rc.5 engine/compiler/script.go: the step's command for a posix shell.
RUNNER_ENTRYPOINT = 'echo "$DRONE_SCRIPT" | /bin/sh'
COMMIT = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "ab" * 32
PUSHED = "registry.homeci.localhost/homeci/sample-app"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=rendering.scenario_name)
def test_step_commands_survive_the_runners_echo(
    go: drone.GoTemplateRenderer, tmp_path: Path, scenario: Path, sample_drone_yml: dict[str, Any]
) -> None:
    """The runner pipes the script through `echo`; dash's echo reads backslash escapes, so a `\\n` in a
    command became a newline and broke the deploy step's jsonpath (seen on the local real node)."""
    inputs = dict(sample_drone_yml["data"])
    for pushed in ("main", "feature"):
        pipeline = render(go, scenario, inputs, tmp_path, owner="homeci", name="sample-app", pushed=pushed)
        for name, step in steps_by_name(pipeline).items():
            for i, command in enumerate(step.get("commands") or []):
                assert "\\" not in command, f"step {name} commands[{i}] has a backslash: {command!r}"


def _drone_subst(text: str, env: dict[str, str]) -> str:
    """What Drone does to a step before it runs: ${VAR} (and ${VAR,,}) from its variables, $$ -> $."""
    for key, value in env.items():
        text = text.replace("${" + key + ",,}", value.lower()).replace("${" + key + "}", value)
    return text.replace("$$", "$")


@dataclass
class Deploy:
    """One run of the deploy step's first command."""

    rc: int
    calls: str  # kubectl calls, one per line
    applied: str  # the objects `apply -f` would send
    stdout: str
    stderr: str


def _run_deploy(go: drone.GoTemplateRenderer, tmp_path: Path, inputs: dict[str, Any], app: Path,
                get_rc: int = 0, can_i: str = "yes", can_i_err: str = "",
                digest: str | None = f"{PUSHED}@{DIGEST}") -> Deploy:
    """Run the deploy step's first command in ``app`` with the real kubectl's kustomize, as the runner
    starts it; ``digest`` is what the build step left in the digest file (None: no file)."""
    from homeci import toolchain

    try:
        real = toolchain.resolve("kubectl")
    except HomeciError as exc:
        pytest.skip(f"kubectl not built: {exc}")
    drone_env = {"DRONE_COMMIT_SHA": COMMIT, "DRONE_REPO": "homeci/Sample-App"}
    pipeline = render(go, SCENARIOS[0], inputs, tmp_path, owner="homeci", name="sample-app")
    step = steps_by_name(pipeline)["deploy"]
    env = {k: _drone_subst(str(v), drone_env) for k, v in step["environment"].items()}
    assert env["DEPLOY_DIGEST_FILE"] == DIGEST_FILE
    env["DEPLOY_DIGEST_FILE"] = str(tmp_path / "workspace-homeci-image")  # /drone/src is the pod's
    if digest is not None:
        Path(env["DEPLOY_DIGEST_FILE"]).write_text(digest + "\n")
    script = _drone_subst(step["commands"][0], drone_env)
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "kubectl").write_text(KUBECTL_SHIM)
    (bindir / "kubectl").chmod(0o755)
    log, out = tmp_path / "calls.log", tmp_path / "applied.yaml"
    log.write_text("")
    out.unlink(missing_ok=True)
    run_env = {**env, "PATH": f"{bindir}:/usr/bin:/bin", "REAL_KUBECTL": str(real), "SHIM_LOG": str(log),
               "SHIM_OUT": str(out), "SHIM_GET_RC": str(get_rc), "SHIM_CANI": can_i,
               "SHIM_CANI_ERR": can_i_err, "TMPDIR": str(tmp_path), "HOME": os.environ["HOME"],
               "DRONE_REPO_NAMESPACE": "homeci"}
    # As the Kubernetes runner starts commands: the script in DRONE_SCRIPT, piped through echo.
    proc = subprocess.run(["sh", "-c", RUNNER_ENTRYPOINT], cwd=app, capture_output=True, text=True,
                          check=False, env={**run_env, "DRONE_SCRIPT": script})
    return Deploy(proc.returncode, log.read_text(), out.read_text() if out.exists() else "", proc.stdout,
                  proc.stderr)


def _applied(run: Deploy) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(run.applied) if o}


def test_deploy_step_applies_the_apps_manifests_pinned_by_digest(
    go: drone.GoTemplateRenderer, tmp_path: Path, sample_drone_yml: dict[str, Any]
) -> None:
    """The first push creates the app: k8s/ applied into the target namespace, the image pinned to the
    commit's tag AND the digest the build step pushed (a later push of that tag changes nothing)."""
    inputs = dict(sample_drone_yml["data"], namespace="team-a")
    run = _run_deploy(go, tmp_path, inputs, SAMPLE_APP)
    assert run.rc == 0, f"deploy step failed: {run.stderr}"
    calls = run.calls.splitlines()
    assert calls[0] == "auth can-i create deployments.apps --namespace team-a", f"first call: {calls}"
    assert calls[-1].startswith("apply -f "), f"deploy step kubectl calls: {calls}"
    assert [c.split()[0] for c in calls].count("kustomize") == 1, f"one kustomize render: {calls}"
    objs = _applied(run)
    wanted = {("Deployment", "sample-app"), ("Service", "sample-app"), ("Ingress", "sample-app")}
    assert set(objs) >= wanted, f"objects applied: {sorted(objs)}"
    for (kind, name), obj in objs.items():
        assert obj["metadata"].get("namespace") == "team-a", f"{kind}/{name}.metadata.namespace"
    container = objs[("Deployment", "sample-app")]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == f"{PUSHED}:{COMMIT}@{DIGEST}", (
        "Deployment/sample-app containers[sample-app].image is not pinned to the built commit's digest"
    )
    assert objs[("Ingress", "sample-app")]["spec"]["ingressClassName"] == "homeci"
    assert "has no spec.ingressClassName" not in run.stdout, "the sample app's Ingress names its class"


@pytest.mark.parametrize(("can_i", "err", "needle"), [
    ("no", "",
     "homeci: homeci may not deploy to namespace team-b: add it to targets[].owners of drone-pipelines"),
    ("", "Unable to connect to the server: dial tcp 10.0.0.1:443: i/o timeout",
     "homeci: cannot ask the Kubernetes API whether homeci may deploy to namespace team-b: "
     "Unable to connect"),
])
def test_deploy_step_stops_before_writing_when_the_owner_may_not_deploy(
    go: drone.GoTemplateRenderer, tmp_path: Path, sample_drone_yml: dict[str, Any], can_i: str, err: str,
    needle: str,
) -> None:
    inputs = dict(sample_drone_yml["data"], namespace="team-b")
    run = _run_deploy(go, tmp_path, inputs, SAMPLE_APP, can_i=can_i, can_i_err=err)
    assert run.rc == 1, f"deploy step went on: {run.calls}"
    assert run.stderr.strip() == needle or run.stderr.strip().startswith(needle), run.stderr
    assert run.calls.splitlines() == ["auth can-i create deployments.apps --namespace team-b"], (
        f"kubectl called after the refusal: {run.calls}"
    )


@pytest.mark.parametrize("left", [None, "", f"{PUSHED}@sha256:short", f"{PUSHED}:{COMMIT}"])
def test_deploy_step_refuses_an_image_it_cannot_pin(go: drone.GoTemplateRenderer, tmp_path: Path,
                                                    sample_drone_yml: dict[str, Any],
                                                    left: str | None) -> None:
    run = _run_deploy(go, tmp_path, dict(sample_drone_yml["data"]), SAMPLE_APP, digest=left)
    assert run.rc == 1 and "left no image digest" in run.stderr, f"digest file {left!r}: {run.stderr!r}"
    assert not any(c.startswith(("apply", "--namespace")) for c in run.calls.splitlines()), run.calls


def _app_with_ingresses(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    (app / "deploy").mkdir(parents=True)
    for name in ("deployment.yaml", "service.yaml"):
        shutil.copy(SAMPLE_APP / "k8s" / name, app / "deploy" / name)
    ingress = yaml.safe_load((SAMPLE_APP / "k8s" / "ingress.yaml").read_text())
    plain = {**ingress, "metadata": {"name": "web.v2"}, "spec": dict(ingress["spec"])}
    del plain["spec"]["ingressClassName"]
    other = {**ingress, "metadata": {"name": "web.v3"},
             "spec": {**ingress["spec"], "ingressClassName": "nginx"}}
    (app / "deploy" / "ingress.yaml").write_text(yaml.safe_dump(ingress))
    (app / "deploy" / "more.yaml").write_text(yaml.safe_dump_all([plain, other]))
    return app


def test_deploy_step_gives_an_ingress_without_class_the_stacks_class(
    go: drone.GoTemplateRenderer, tmp_path: Path
) -> None:
    """Issue 19: an app Ingress without ingressClassName is served by homeci (patched to the stack's
    class, saying so with the file to fix); one with another class is left alone (the admission policy
    refuses it with its own message)."""
    app = _app_with_ingresses(tmp_path)
    run = _run_deploy(go, tmp_path, {"namespace": "apps", "manifests": "deploy"}, app)
    assert run.rc == 0, f"deploy step failed: {run.stderr}"
    objs = _applied(run)
    classes = {name: o["spec"].get("ingressClassName")
               for (kind, name), o in objs.items() if kind == "Ingress"}
    assert classes == {"sample-app": "homeci", "web.v2": "homeci", "web.v3": "nginx"}, classes
    said = [ln for ln in run.stdout.splitlines() if "has no spec.ingressClassName" in ln]
    assert said == ["homeci: Ingress web.v2 has no spec.ingressClassName: serving it with class homeci; "
                    "set ingressClassName: homeci in deploy/more.yaml"], run.stdout


def test_deploy_step_without_manifests_sets_the_image_or_fails_clearly(
    go: drone.GoTemplateRenderer, tmp_path: Path
) -> None:
    empty = tmp_path / "app"
    empty.mkdir()
    run = _run_deploy(go, tmp_path, {"namespace": "apps"}, empty, get_rc=1)
    assert run.rc == 1 and "no folder k8s/" in run.stderr, f"missing manifests and Deployment: {run}"
    run = _run_deploy(go, tmp_path, {"namespace": "apps"}, empty, get_rc=0)
    assert run.rc == 0, run.stderr
    assert run.calls.splitlines()[0] == "auth can-i patch deployments.apps --namespace apps", run.calls
    assert f"set image deployment/sample-app sample-app={PUSHED}:{COMMIT}@{DIGEST}" in run.calls, run.calls


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
