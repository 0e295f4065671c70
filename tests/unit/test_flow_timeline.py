"""Where a push's time goes (homeci.flow.timeline): the critical path cut from what the watch saw.

The marks below are what `Watch` records on the real node for one push (the shapes of the runner's step
pod — every container created from the placeholder, then swapped — and of a rollout), built by
`Push`; each scenario checks that the segments follow one another, add up to push → served, and say
wait or work where they should.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from homeci.flow import driver, timeline
from homeci.flow.timeline import Mark

BUILDS, APPS = "homeci-builds", "apps"
PLACEHOLDER = "docker.io/drone/placeholder:1"
IMAGES = {"clone": "docker.io/drone/git:1.2.1", "test": "docker.io/library/python:3.13.14-alpine3.24",
          "build": "docker.io/plugins/kaniko:1.13.9", "deploy": "docker.io/alpine/kubectl:1.37.2"}
KANIKO_LOG = ('INFO[0003] Pushed registry.homeci.test/homeci/app@sha256:ab\n'
              '{"Command: COPY VERSION sample_app.py ./":1200000,"FS Unpacking":2750000000,'
              '"Retrieving Source Image":40000000,"Total Build Time":2900000000,'
              '"Total Push Time":180000000}\n'
              'INFO[0003] Benchmark file written at /dev/stdout\n')


@dataclass
class Push:
    """Marks of one push: the step pod (created at ``t0``), then each step; times are offsets."""

    t0: float = 1000.0
    marks: list[Mark] = field(default_factory=list)
    pod: str = "pod/drone-abc"

    def at(self, dt: float, subject: str, key: str, value: str, ns: str = BUILDS) -> None:
        self.marks.append(Mark(self.t0 + dt, ns, subject, key, value))

    def step_pod(self, build: int = 7, swap_clone: bool = True, repo: str = "homeci/app") -> None:
        self.at(0.0, self.pod, "exists", "yes")
        self.at(0.0, self.pod, "build", str(build))
        self.at(0.0, self.pod, "repo", repo)
        for step in IMAGES:
            self.at(0.0, self.pod, f"step:{step}-id", step)
            self.at(0.0, self.pod, f"image:{step}-id", PLACEHOLDER if swap_clone or step != "clone"
                    else IMAGES[step])
        self.at(0.1, self.pod, "PodScheduled", "True")
        for step in IMAGES:  # every placeholder starts and idles
            self.at(0.9, self.pod, f"state:{step}-id", f"running {PLACEHOLDER}")

    def step(self, name: str, swapped: float, running: float, ended: float | None, code: int = 0) -> None:
        if swapped >= 0:
            self.at(swapped, self.pod, f"image:{name}-id", IMAGES[name])
            self.at(swapped + 0.05, self.pod, f"state:{name}-id", f"terminated 2 {PLACEHOLDER}")
        self.at(running, self.pod, f"state:{name}-id", f"running {IMAGES[name]}")
        if ended is not None:
            self.at(ended, self.pod, f"state:{name}-id", f"terminated {code} {IMAGES[name]}")

    def rollout(self, updated: float, created: float, running: float, ready: float) -> None:
        self.at(-30.0, "deployment/app", "generation", "3", APPS)  # listed when the watch started
        self.at(-30.0, "pod/app-old", "exists", "yes", APPS)
        self.at(updated, "deployment/app", "generation", "4", APPS)
        self.at(created, "pod/app-new", "exists", "yes", APPS)
        self.at(running, "pod/app-new", "state:app", "running registry.homeci.test/homeci/app@sha256:ab",
                APPS)
        self.at(ready, "pod/app-new", "Ready", "True", APPS)
        self.at(ready + 0.05, "slice/app-x", "ready:app-new", "True", APPS)

    def inputs(self, served: float | None, **kw: object) -> timeline.Inputs:
        base = dict(pushed=self.t0 - 0.6, served=None if served is None else self.t0 + served,
                    build_created=self.t0 - 0.5, build_number=7, build_namespace=BUILDS, app_namespace=APPS,
                    deployment="app", steps=list(IMAGES), kaniko=timeline.kaniko_timings(KANIKO_LOG))
        base.update(kw)
        return timeline.Inputs(**base)  # type: ignore[arg-type]


def warm_push(swap_clone: bool = True) -> Push:
    p = Push()
    p.step_pod(swap_clone=swap_clone)
    p.step("clone", 0.3 if swap_clone else -1, 1.2, 1.6)
    p.step("test", 2.0, 3.5, 4.4)
    p.step("build", 4.8, 5.7, 9.5)
    p.step("deploy", 9.9, 10.7, 14.0)
    p.rollout(updated=11.2, created=11.25, running=12.3, ready=13.4)
    return p


def names(segments: list[timeline.Segment], kind: str | None = None) -> list[str]:
    return [s.name for s in segments if kind is None or s.kind == kind]


@pytest.mark.parametrize("swap_clone", [True, False], ids=["clone-swapped", "clone-created-with-its-image"])
def test_a_warm_push_is_cut_into_consecutive_wait_and_work_segments(swap_clone: bool) -> None:
    p = warm_push(swap_clone)
    segments = timeline.critical_path(p.marks, p.inputs(served=13.6))
    assert names(segments, "work") == ["clone: git fetch", "test: commands", "build: kaniko",
                                       "deploy: kubectl checks, apply"], segments
    assert names(segments)[:3] == ["webhook: push → Drone build", "runner: accept stage, create step pod",
                                   "clone: pod sandbox, container start"], segments
    assert names(segments, "wait")[-4:] == ["rollout: new pod created", "rollout: schedule, pull, start",
                                            "rollout: readiness probe", "Traefik: new endpoint answers"]
    wait, work = timeline.totals(segments)
    assert wait + work == pytest.approx(13.6 + 0.6), "the wait and work segments must add up to push → served"
    assert all(s.seconds >= 0 for s in segments), segments
    by = {s.name: s for s in segments}
    assert by["test: container start"].seconds == pytest.approx(1.5), "swap → running of the test image"
    assert by["build: kaniko"].seconds == pytest.approx(3.8), "running → terminated of the kaniko image"
    assert by["build: runner hand-off (image swap)"].seconds == pytest.approx(0.4)
    assert by["rollout: readiness probe"].seconds == pytest.approx(1.1)
    assert by["deploy: rollout status returns"].kind == "info", "off the critical path once served"
    assert by["clone: git fetch"].seconds == pytest.approx(0.4), (
        "the placeholder's own running state must not count as the clone image running")


@pytest.mark.parametrize("test_ends", [4.4, 9.8], ids=["test-ends-first", "test-ends-last"])
def test_with_parallel_build_the_path_goes_through_the_step_that_ended_last(test_ends: float) -> None:
    """parallel_build: test and build are swapped in together after the clone; deploy waits for both.
    The path goes through whichever ended later, the other is an info row beside it."""
    p = Push()
    p.step_pod()
    p.step("clone", 0.3, 1.2, 1.6)
    p.step("test", 2.0, 2.6, test_ends)
    p.step("build", 2.05, 2.7, 9.5)
    late = max(test_ends, 9.5)
    p.step("deploy", late + 0.4, late + 1.1, late + 4.5)
    p.rollout(updated=late + 1.6, created=late + 1.65, running=late + 2.4, ready=late + 3.5)
    segments = timeline.critical_path(p.marks, p.inputs(served=late + 3.7))
    last, other = ("test", "build") if test_ends > 9.5 else ("build", "test")
    work = {"test": "test: commands", "build": "build: kaniko"}
    assert work[last] in names(segments, "work"), f"{last} ended last: push → served waited on it {segments}"
    assert work[other] not in names(segments, "work"), f"{other} ran beside {last}: off the path {segments}"
    by = {s.name: s for s in segments}
    beside = by[f"{other}: ran beside {last}"]
    ran = {"test": test_ends - 2.6, "build": 9.5 - 2.7}  # running → terminated of each
    assert beside.kind == "info" and beside.seconds == pytest.approx(ran[other]), beside
    assert by["deploy: runner hand-off (image swap)"].detail.startswith(f"{last}'s end seen"), segments
    assert by[f"{last}: runner hand-off (image swap)"].detail.startswith("clone's end seen"), segments
    wait, work_s = timeline.totals(segments)
    assert wait + work_s == pytest.approx(late + 3.7 + 0.6), "the path's segments add up to push → served"
    assert all(s.seconds >= 0 for s in segments), segments


def test_serial_steps_are_all_on_the_path() -> None:
    p = warm_push()
    steps = timeline.step_times(p.marks, p.pod)
    assert [s.step for s in timeline.on_path(steps)] == ["clone", "test", "build", "deploy"]


def test_kanikos_timings_come_from_its_log() -> None:
    timings = timeline.kaniko_timings(KANIKO_LOG)
    assert timings["FS Unpacking"] == pytest.approx(2.75)
    assert timings["Total Push Time"] == pytest.approx(0.18)
    rows = {s.name: s for s in timeline.kaniko_segments(timings)}
    assert rows["kaniko: unpack base"].seconds == pytest.approx(2.75)
    assert rows["kaniko: push"].seconds == pytest.approx(0.18)
    assert "COPY VERSION" in rows["kaniko: Dockerfile commands"].detail
    assert all(s.kind == "info" for s in rows.values()), "kaniko's rows sit beside the path, not on it"
    assert timeline.kaniko_timings("INFO no benchmark here\n{not json Total Build Time}") == {}


def test_a_failed_build_stops_the_path_where_the_step_failed() -> None:
    p = Push()
    p.step_pod()
    p.step("clone", 0.3, 1.2, 1.6)
    p.step("test", 2.0, 3.5, 4.4, code=1)
    segments = timeline.critical_path(p.marks, p.inputs(served=None))
    assert names(segments)[-1] == "test: commands", segments
    assert segments[-1].detail == "exit 1"
    assert not any(n.startswith(("build", "deploy", "rollout", "Traefik")) for n in names(segments))


def test_another_repositorys_build_of_the_same_number_is_not_this_push() -> None:
    """Drone numbers builds per repository: build #7 of another repository, seen first, is not the path."""
    p = warm_push()
    other = Push(marks=[], pod="pod/drone-other")
    other.step_pod(repo="alice/hello")
    other.step("clone", 0.3, 1.2, 1.6)
    marks = other.marks + p.marks
    segments = timeline.critical_path(marks, p.inputs(served=13.6, repo="homeci/app"))
    assert "build: kaniko" in names(segments, "work"), segments
    assert timeline.step_pod(marks, BUILDS, 7) == "pod/drone-other", "without a repository, the first seen"
    assert timeline.step_pod(marks, BUILDS, 7, "homeci/app") == "pod/drone-abc"
    assert timeline.step_pod(marks, BUILDS, 7, "Homeci/App") == "pod/drone-abc", "slugs are lower-case"


def test_without_the_step_pod_only_the_webhook_is_known() -> None:
    p = warm_push()
    segments = timeline.critical_path(p.marks, p.inputs(served=13.6, build_number=8))
    assert names(segments) == ["webhook: push → Drone build"], "another build's pod must not be used"


def test_step_times_follow_the_runners_image_swap() -> None:
    p = warm_push()
    steps = timeline.step_times(p.marks, p.pod)
    assert [s.step for s in steps] == ["clone", "test", "build", "deploy"]
    test = steps[1]
    assert (test.swapped, test.running, test.terminated) == (1002.0, 1003.5, 1004.4)
    assert test.exit_code == "0"


def test_prepare_renames_the_sample_app_for_a_new_app(tmp_path: Path) -> None:
    """A push as another repository name is a new app: the manifests name it (objects, labels, host,
    image) the way a user would have edited them."""
    from homeci.paths import sample_app

    app = driver.App(source=sample_app(), owner="homeci", name="loop-1", namespace="apps",
                     host="loop-1.lab.test")
    repo = driver.prepare(app, tmp_path, domain="lab.test")
    text = "".join(f.read_text() for f in sorted((repo / "k8s").glob("*.yaml")))
    assert "sample-app" not in text and "homeci.localhost" not in text, "k8s/ still names the sample"
    assert "name: loop-1" in text and "host: loop-1.lab.test" in text
    assert "registry.lab.test/homeci/loop-1:initial" in text
