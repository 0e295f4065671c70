"""The release flow: one version rule, the changelog, Artifact Hub metadata, and the previous release.

The policy (CONTRIBUTING.md says it in prose; this module is its one implementation):

* **One suite version.** Every chart under ``charts/`` (the umbrella, its subcharts, drone-pipelines) carries
  the same ``version``; the umbrella pins its subcharts at it. ``appVersion`` of the published charts is that
  version too (the product is homeci); a subchart's ``appVersion`` is its upstream program's version.
* **The bump comes from CHANGELOG.md** (Keep a Changelog): the ``[Unreleased]`` section's kinds decide.
  A breaking entry (any ``Removed`` entry, or one starting ``**Breaking**``) is a major bump (a minor one
  while the version is 0.x); ``Added``/``Changed``/``Deprecated`` a minor one; only ``Fixed``/``Security``
  a patch. The first release (no ``v<version>`` tag yet) keeps the version the charts carry.
* **Restarts.** An upgrade may change pod templates (a rollout) only where the changelog says so: section
  ``### Restarts`` lists ``- `Kind/<release>-name`: why``. The upgrade test holds the charts to it.
* **The previous release** (what the upgrade test installs first) is the newest ``v<version>`` tag that is an
  ancestor of HEAD; before the first tag, the commit recorded in ``toolchain/release.toml``
  ``[upgrade-baseline]``.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
import tarfile
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from homeci import manifests, rendering
from homeci.errors import HomeciError
from homeci.helm import Helm

CHANGELOG = "CHANGELOG.md"
ARTIFACTHUB_REPO = "artifacthub-repo.yml"
RELEASE_TOML = Path("toolchain") / "release.toml"
TAG_PREFIX = "v"
KINDS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")
RESTARTS = "Restarts"
UNRELEASED = "Unreleased"
BREAKING = "**Breaking**"
RELEASE_PLACEHOLDER = "<release>"


# -- versions ----------------------------------------------------------------------------------------

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True, order=False)
class Version:
    major: int
    minor: int
    patch: int
    pre: str = ""

    @classmethod
    def parse(cls, text: str, where: str = "") -> Version:
        m = _SEMVER.match(str(text).strip().removeprefix(TAG_PREFIX))
        if not m:
            raise HomeciError(f"{where or 'version'} {text!r}: not a semantic version (MAJOR.MINOR.PATCH); "
                              "fix it")
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4) or "")

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + (f"-{self.pre}" if self.pre else "")

    def key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        """Semver precedence: a pre-release sorts before its release."""
        parts = tuple((0, int(p)) if p.isdigit() else (1, p) for p in self.pre.split(".")) if self.pre else ()
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, parts)

    def __lt__(self, other: Version) -> bool:
        return self.key() < other.key()

    def bump(self, level: str) -> Version:
        if level == "major":
            return Version(self.major + 1, 0, 0) if self.major >= 1 else Version(0, self.minor + 1, 0)
        if level == "minor":
            return Version(self.major, self.minor + 1, 0)
        return Version(self.major, self.minor, self.patch + 1)


# -- the changelog -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    kind: str          # one of KINDS
    text: str

    @property
    def breaking(self) -> bool:
        return self.kind == "Removed" or self.text.startswith(BREAKING)


@dataclass(frozen=True)
class Restart:
    workload: str      # Kind/<release>-name, as written
    reason: str

    def ref(self, release: str) -> str:
        return self.workload.replace(RELEASE_PLACEHOLDER, release)


@dataclass
class Section:
    title: str                     # "Unreleased" or a version
    date: str
    line: int
    changes: list[Change] = field(default_factory=list)
    restarts: list[Restart] = field(default_factory=list)

    @property
    def version(self) -> Version | None:
        return None if self.title == UNRELEASED else Version.parse(self.title)

    @property
    def empty(self) -> bool:
        return not self.changes and not self.restarts

    def level(self) -> str:
        """The bump this section asks for: major, minor or patch."""
        if any(c.breaking for c in self.changes):
            return "major"
        if any(c.kind in ("Added", "Changed", "Deprecated") for c in self.changes):
            return "minor"
        return "patch"


_H2 = re.compile(r"^## \[([^\]]+)\](?:\s+-\s+(\d{4}-\d{2}-\d{2}))?\s*$")
_H3 = re.compile(r"^### (\w+)\s*$")
_RESTART = re.compile(r"^`([A-Za-z]+/[^`]+)`\s*:?\s*(.*)$")


def parse_changelog(path: Path) -> list[Section]:
    """The sections of a Keep-a-Changelog file, newest first; malformed lines fail naming file and line."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise HomeciError(f"{path}: cannot read it ({exc.strerror}); restore CHANGELOG.md from git") from None
    sections: list[Section] = []
    kind = ""
    for number, line in enumerate(lines, 1):
        h2 = _H2.match(line)
        if h2:
            title = h2.group(1)
            if title != UNRELEASED:
                Version.parse(title, f"{path}:{number}: section")
            sections.append(Section(title, h2.group(2) or "", number))
            kind = ""
            continue
        if line.startswith("## "):
            raise HomeciError(f"{path}:{number}: {line!r} is not '## [Unreleased]' or "
                              "'## [X.Y.Z] - YYYY-MM-DD'; fix the heading")
        h3 = _H3.match(line)
        if h3:
            if not sections:
                raise HomeciError(f"{path}:{number}: {line!r} comes before any '## [...]' section; move it")
            kind = h3.group(1)
            if kind not in (*KINDS, RESTARTS):
                raise HomeciError(f"{path}:{number}: unknown kind {kind!r}; use one of "
                                  f"{', '.join((*KINDS, RESTARTS))}")
            continue
        if line.startswith("- ") and sections and kind:
            text = line[2:].strip()
            if kind == RESTARTS:
                m = _RESTART.match(text)
                if not m:
                    raise HomeciError(f"{path}:{number}: a Restarts entry names its workload first, e.g. "
                                      "- `Deployment/<release>-gogs`: why; fix the line")
                sections[-1].restarts.append(Restart(m.group(1), m.group(2)))
            else:
                sections[-1].changes.append(Change(kind, text))
        elif line.startswith("  ") and line.strip() and sections and kind:
            # a continuation line of the previous entry
            sec = sections[-1]
            if kind == RESTARTS and sec.restarts:
                last = sec.restarts[-1]
                sec.restarts[-1] = Restart(last.workload, f"{last.reason} {line.strip()}".strip())
            elif sec.changes:
                c = sec.changes[-1]
                sec.changes[-1] = Change(c.kind, f"{c.text} {line.strip()}")
    return sections


def unreleased(sections: list[Section], path: Path) -> Section:
    for s in sections:
        if s.title == UNRELEASED:
            return s
    raise HomeciError(f"{path}: no '## [{UNRELEASED}]' section; add one above the newest release")


def restarts_after(sections: list[Section], previous: Version | None) -> list[Restart]:
    """Restarts the changelog names for an upgrade from ``previous`` (Unreleased and newer releases)."""
    out: list[Restart] = []
    for s in sections:
        v = s.version
        if v is None or previous is None or previous < v:
            out += s.restarts
    return out


# -- charts and their versions ------------------------------------------------------------------------


def chart_files(root: Path) -> list[Path]:
    """Every Chart.yaml of the suite (published charts and the subcharts inside the umbrella)."""
    base = root / "charts"
    return sorted(p for p in base.rglob("Chart.yaml") if "tmpcharts" not in p.parts)


def published_charts(root: Path) -> list[Path]:
    """The installable top-level charts (a library chart ships inside the charts that use it)."""
    base = root / "charts"
    return [p.parent for p in chart_files(root)
            if p.parent.parent == base and _load(p).get("type", "application") != "library"]


def _load(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise HomeciError(f"{path}: cannot read it ({exc}); fix the file") from None
    if not isinstance(data, dict):
        raise HomeciError(f"{path}: not a Chart.yaml mapping; fix the file")
    return data


def suite_version(root: Path) -> Version:
    """The one version every chart carries; charts that disagree fail naming the first that differs."""
    files = chart_files(root)
    if not files:
        raise HomeciError(f"{root / 'charts'}: no charts to release")
    first = files[0]
    version = str(_load(first).get("version", ""))
    for f in files[1:]:
        other = str(_load(f).get("version", ""))
        if other != version:
            raise HomeciError(f"{f}: version {other} differs from {version} in {first}: every chart of the "
                              "suite carries one version; set them equal (homeci release does)")
    return Version.parse(version, f"{first}: version")


def _git(root: Path, *args: str, binary: bool = False) -> Any:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=120, check=False)
    if proc.returncode != 0:
        why = proc.stderr.decode(errors="replace").strip().splitlines()
        raise HomeciError(f"git {' '.join(args)} in {root} failed: {why[-1] if why else 'no output'}")
    return proc.stdout if binary else proc.stdout.decode()


def release_tags(root: Path) -> list[tuple[Version, str]]:
    """``v<semver>`` tags reachable from HEAD, oldest first."""
    out = _git(root, "tag", "--merged", "HEAD", "--list", f"{TAG_PREFIX}*")
    tags = []
    for tag in out.split():
        try:
            tags.append((Version.parse(tag), tag))
        except HomeciError:
            continue
    return sorted(tags, key=lambda t: t[0].key())


@dataclass(frozen=True)
class Baseline:
    """The previous release: a tag, or (before the first one) the commit in toolchain/release.toml."""

    ref: str
    commit: str
    source: str        # "tag" | "recorded commit"
    version: Version | None = None   # the released version (tags only)


def previous_release(root: Path) -> Baseline:
    tags = release_tags(root)
    if tags:
        version, tag = tags[-1]
        return Baseline(tag, _git(root, "rev-parse", f"{tag}^{{commit}}").strip(), "tag", version)
    file = root / RELEASE_TOML
    try:
        data = tomllib.loads(file.read_text())
        commit = str(data["upgrade-baseline"]["commit"])
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError) as exc:
        raise HomeciError(f"{file}: no [upgrade-baseline] commit ({exc}) and no {TAG_PREFIX}<version> tag: "
                          "record the commit the upgrade test starts from") from None
    try:
        resolved = _git(root, "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}").strip()
    except HomeciError:
        raise HomeciError(f"{file}: [upgrade-baseline] commit {commit} is not in this clone; fetch the "
                          "history (git fetch --unshallow) or record a commit that is") from None
    return Baseline(commit, resolved, "recorded commit")


def export_charts(root: Path, ref: str, dest: Path) -> Path:
    """``charts/`` as it was at ``ref`` (git archive), written under ``dest``; returns ``dest/charts``."""
    data = _git(root, "archive", "--format=tar", ref, "charts", binary=True)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "charts"


# -- rendered images ---------------------------------------------------------------------------------

# Image references a render carries outside pod specs: the runner's images for every pipeline step
# (env DRONE_IMAGE_*) and the pipeline templates' step defaults ({{- $d_image_<x> := "<image>" -}}).
_ENV_IMAGE = re.compile(r"^DRONE_IMAGE_[A-Z_]+$")
_TEMPLATE_IMAGE = re.compile(r"\$d_image_\w+\s*:=\s*\"([^\"]+)\"")


def rendered_images(objects: Iterable[manifests.Manifest]) -> set[str]:
    found: set[str] = set()
    for obj in objects:
        for _path, container in obj.containers():
            if container.get("image"):
                found.add(str(container["image"]))
            for env in container.get("env") or []:
                if _ENV_IMAGE.match(str(env.get("name", ""))) and env.get("value"):
                    found.add(str(env["value"]))
        if obj.kind == "ConfigMap":
            for value in (obj.obj.get("data") or {}).values():
                found.update(_TEMPLATE_IMAGE.findall(str(value)))
    return found


def _mirrors(scenario: Path) -> bool:
    try:
        data = yaml.safe_load(scenario.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise HomeciError(f"{scenario}: cannot read it ({exc}); fix the file") from None
    glob = data.get("global") if isinstance(data, dict) else None
    return bool(isinstance(glob, dict) and glob.get("imageRegistry"))


def chart_images(chart: Path, helm: Helm | None = None) -> list[dict[str, str]]:
    """Every image the chart renders with its defaults and in every ``ci/*-values.yaml`` scenario (except
    those that set ``global.imageRegistry``: a mirror is not another image), as Artifact Hub's
    ``name``/``image`` list."""
    helm = helm or Helm(3)
    images: set[str] = set()
    for scenario in [None, *rendering.scenarios(chart)]:
        if scenario is not None and _mirrors(scenario):
            continue
        text = helm.template(chart, values_files=[scenario] if scenario else [])
        images |= rendered_images(manifests.parse(text))
    named: dict[str, str] = {}
    for image in sorted(images):
        base = image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
        name = base if base not in named else f"{base}-{len(named)}"
        named[name] = image
    return [{"name": n, "image": i} for n, i in sorted(named.items())]


# -- Chart.yaml and Artifact Hub metadata ------------------------------------------------------------


class _Literal(str):
    pass


def _literal(dumper: yaml.SafeDumper, data: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, _literal)


def images_yaml(listed: list[dict[str, str]]) -> str:
    """The ``artifacthub.io/images`` annotation's text."""
    return yaml.safe_dump(listed, sort_keys=False)


def changes_annotation(section: Section) -> str:
    entries: list[dict[str, str]] = [{"kind": c.kind.lower(), "description": c.text} for c in section.changes]
    entries += [{"kind": "changed", "description": f"upgrade restarts {r.workload}: {r.reason}".rstrip(": ")}
                for r in section.restarts]
    return yaml.safe_dump(entries, sort_keys=False, width=1000)


def _block(text: str, key: str) -> tuple[int, int]:
    """Start and end line index of the top-level ``key:`` block in a YAML text (end exclusive)."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith(f"{key}:")), -1)
    if start < 0:
        return -1, -1
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith((" ", "#", "-"))):
        end += 1
    return start, end


def set_chart_fields(path: Path, *, version: Version | str, app_version: Version | None = None,
                     annotations: dict[str, str] | None = None, pins: bool = True) -> None:
    """Rewrite ``version`` (and ``appVersion``, the annotations and, with ``pins``, the umbrella's pins of its
    local subcharts) in place, keeping every other line and comment as written."""
    text = path.read_text()
    data = _load(path)
    text, n = re.subn(r"(?m)^version:.*$", f"version: {version}", text)
    if n != 1:
        raise HomeciError(f"{path}: expected one top-level 'version:' line, found {n}; fix the file")
    if app_version is not None:
        text, n = re.subn(r"(?m)^appVersion:.*$", f'appVersion: "{app_version}"', text)
        if n != 1:
            raise HomeciError(f"{path}: expected one top-level 'appVersion:' line, found {n}; add it")
    local = {d.get("name") for d in data.get("dependencies") or []
             if str(d.get("repository", "")).startswith("file://")}
    if local and pins:
        start, end = _block(text, "dependencies")
        lines = text.splitlines()
        current = ""
        for i in range(start, end):
            m = re.match(r"^\s*-?\s*name:\s*(\S+)", lines[i])
            if m:
                current = m.group(1)
            if current in local:
                lines[i] = re.sub(r"^(\s*-?\s*)version:.*$", rf"\g<1>version: {version}", lines[i])
        text = "\n".join(lines) + "\n"
    if annotations is not None:
        current_ann = dict(data.get("annotations") or {})
        current_ann.update(annotations)
        styled = {k: _Literal(v) if "\n" in v else v for k, v in current_ann.items()}
        block = yaml.dump({"annotations": styled}, Dumper=_Dumper, sort_keys=False, width=1000)
        start, end = _block(text, "annotations")
        lines = text.splitlines()
        if start < 0:
            lines += block.rstrip("\n").splitlines()
        else:
            lines[start:end] = block.rstrip("\n").splitlines()
        text = "\n".join(lines) + "\n"
    path.write_text(text)
    check = _load(path)
    if str(check.get("version")) != str(version):
        raise HomeciError(f"{path}: rewriting the version left {check.get('version')!r}; fix the file "
                          "by hand")


def write_artifacthub_repo(root: Path, *, fingerprint: str = "", key_url: str = "") -> Path:
    """``artifacthub-repo.yml`` (served beside index.yaml): owners kept as written, signing key updated."""
    path = root / ARTIFACTHUB_REPO
    data: dict[str, Any] = {}
    if path.is_file():
        loaded = yaml.safe_load(path.read_text()) or {}
        data = loaded if isinstance(loaded, dict) else {}
    if fingerprint:
        data["signKey"] = {"fingerprint": fingerprint, "url": key_url}
    header = ("# Artifact Hub repository metadata, served beside index.yaml (and pushed to OCI as the\n"
              "# artifacthub.io tag). Written by `homeci release`; owners and repositoryID are kept as\n"
              "# edited.\n")
    path.write_text(header + yaml.safe_dump(data, sort_keys=False))
    return path


# -- the release -------------------------------------------------------------------------------------


@dataclass
class Plan:
    previous: Version | None       # the last released version (None before the first release)
    version: Version
    level: str                     # major | minor | patch | first
    section: Section
    charts: list[Path]


def plan(root: Path, *, allow_empty: bool = False) -> Plan:
    """What ``homeci release`` would do, without touching anything (an empty [Unreleased] is refused unless
    ``allow_empty``: then it plans a patch)."""
    path = root / CHANGELOG
    section = unreleased(parse_changelog(path), path)
    current = suite_version(root)
    tags = release_tags(root)
    last = tags[-1][0] if tags else None
    if last is not None and last < current:
        raise HomeciError(f"charts carry version {current}, newer than the newest release tag "
                          f"{TAG_PREFIX}{last}: release {current} is prepared; commit it and tag "
                          f"{TAG_PREFIX}{current}")
    if last is not None and current != last:
        raise HomeciError(f"charts carry version {current} but the newest release tag is {TAG_PREFIX}{last}: "
                          f"between releases the charts keep the released version; set it back to {last}")
    if section.empty and not allow_empty:
        raise HomeciError(f"{path}: [{UNRELEASED}] lists no change: describe what this release changes "
                          "(### Added / Changed / Fixed ...) before releasing")
    if last is None:
        return Plan(None, current, "first", section, published_charts(root))
    level = section.level()
    return Plan(last, last.bump(level), level, section, published_charts(root))


def next_version(root: Path) -> Version:
    """The version the working tree would be released as (a patch when nothing is listed yet); a release
    prepared but not yet tagged is its own version."""
    tags = release_tags(root)
    current = suite_version(root)
    if tags and tags[-1][0] < current:
        return current
    return plan(root, allow_empty=True).version


def apply(root: Path, the_plan: Plan, *, date: dt.date, images: Callable[[Path], list[dict[str, str]]],
          fingerprint: str = "", key_url: str = "") -> list[Path]:
    """Write the release into the tree: versions, annotations, CHANGELOG, artifacthub-repo.yml."""
    version = the_plan.version
    changed: list[Path] = []
    annotations_common = {"artifacthub.io/changes": changes_annotation(the_plan.section)}
    if fingerprint:
        annotations_common["artifacthub.io/signKey"] = yaml.safe_dump(
            {"fingerprint": fingerprint, "url": key_url}, sort_keys=False)
    for file in chart_files(root):
        chart = file.parent
        published = chart in the_plan.charts
        annotations = None
        if published:
            annotations = {**annotations_common, "artifacthub.io/images": images_yaml(images(chart))}
        set_chart_fields(file, version=version, app_version=version if published else None,
                         annotations=annotations)
        changed.append(file)
    changelog = root / CHANGELOG
    text = changelog.read_text()
    heading = f"## [{UNRELEASED}]"
    text = text.replace(heading, f"{heading}\n\n## [{version}] - {date.isoformat()}", 1)
    changelog.write_text(text)
    changed.append(changelog)
    changed.append(write_artifacthub_repo(root, fingerprint=fingerprint, key_url=key_url))
    return changed
