"""The drone-pipelines chart seen from Python: its registration script, its Drone templates, and a
real Go ``text/template`` engine to render those templates the way Drone does.

Drone renders a YAML template with Go's ``text/template`` (plus drone/funcmap's functions, which our
templates deliberately do not use) over ``{"input": <data of .drone.yml>, "repo": drone.Repo,
"build": drone.Build}`` with the default ``missingkey`` option. ``repo`` and ``build`` are Go structs
(drone-go's types), so templates must use the Go field names (``.repo.Name``); a JSON name such as
``.repo.name`` fails in Drone ("can't evaluate field name"), as the real Drone 2.28.2 showed in T2.
:class:`GoTemplateRenderer` builds a tiny stdlib-only Go program once (cached under the homeci cache)
that does exactly that — structs with the same field names, no extra function — so a template using
anything else fails here as well. tests/realprog/test_drone_program.py checks that its output equals
Drone's own expansion.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from homeci import paths
from homeci.errors import HomeciError
from homeci_testing.support import load_script

CHART_NAME = "drone-pipelines"

# Drone's own test whether a .drone.yml is a template reference (plugin/converter/template.go,
# regexp.MustCompilePOSIX("^kind:[[:space:]]+template[[:space:]]?+$")): a line `kind: template`.
_TEMPLATE_KIND = re.compile(r"^kind:\s+template\s?$", re.MULTILINE)
_INPUT_REF = re.compile(r"\.input\.([A-Za-z_][A-Za-z0-9_]*)")

_GO_PROGRAM = """\
// Render a Drone YAML template like Drone's template converter: text/template, default options,
// data {"input": map, "repo": Repo, "build": Build}. Built-in functions only.
// Usage: render <template> <data.json>
package main

import (
\t"encoding/json"
\t"fmt"
\t"os"
\t"text/template"
)

// The fields of drone-go's drone.Repo and drone.Build that a template can read, with the same Go
// names and JSON names (the data file uses the JSON names).
type Repo struct {
\tID         int64  `json:"id"`
\tUID        string `json:"uid"`
\tNamespace  string `json:"namespace"`
\tName       string `json:"name"`
\tSlug       string `json:"slug"`
\tSCM        string `json:"scm"`
\tHTTPURL    string `json:"git_http_url"`
\tSSHURL     string `json:"git_ssh_url"`
\tLink       string `json:"link"`
\tBranch     string `json:"default_branch"`
\tPrivate    bool   `json:"private"`
\tVisibility string `json:"visibility"`
\tActive     bool   `json:"active"`
\tConfig     string `json:"config_path"`
\tTrusted    bool   `json:"trusted"`
\tProtected  bool   `json:"protected"`
\tTimeout    int64  `json:"timeout"`
}

type Build struct {
\tNumber      int64             `json:"number"`
\tEvent       string            `json:"event"`
\tAction      string            `json:"action"`
\tLink        string            `json:"link"`
\tTitle       string            `json:"title"`
\tMessage     string            `json:"message"`
\tBefore      string            `json:"before"`
\tAfter       string            `json:"after"`
\tRef         string            `json:"ref"`
\tFork        string            `json:"source_repo"`
\tSource      string            `json:"source"`
\tTarget      string            `json:"target"`
\tAuthor      string            `json:"author_login"`
\tAuthorName  string            `json:"author_name"`
\tAuthorEmail string            `json:"author_email"`
\tSender      string            `json:"sender"`
\tParams      map[string]string `json:"params"`
\tDeploy      string            `json:"deploy_to"`
}

type Data struct {
\tInput map[string]interface{} `json:"input"`
\tRepo  Repo                   `json:"repo"`
\tBuild Build                  `json:"build"`
}

func main() {
\ttext, err := os.ReadFile(os.Args[1])
\tif err != nil {
\t\tfmt.Fprintln(os.Stderr, err)
\t\tos.Exit(2)
\t}
\traw, err := os.ReadFile(os.Args[2])
\tif err != nil {
\t\tfmt.Fprintln(os.Stderr, err)
\t\tos.Exit(2)
\t}
\tvar in Data
\tif err := json.Unmarshal(raw, &in); err != nil {
\t\tfmt.Fprintln(os.Stderr, err)
\t\tos.Exit(2)
\t}
\tdata := map[string]interface{}{"input": in.Input, "repo": in.Repo, "build": in.Build}
\ttmpl, err := template.New("template").Parse(string(text))
\tif err != nil {
\t\tfmt.Fprintln(os.Stderr, "parse:", err)
\t\tos.Exit(1)
\t}
\tif err := tmpl.Execute(os.Stdout, data); err != nil {
\t\tfmt.Fprintln(os.Stderr, "execute:", err)
\t\tos.Exit(1)
\t}
}
"""


def chart_dir() -> Path:
    return paths.charts_dir() / CHART_NAME


def registration_script() -> Path:
    return chart_dir() / "files" / "register.py"


def load_registration(script: Path | None = None) -> ModuleType:
    """Import the chart's ``files/register.py`` (the very file the hook Job runs) as a module."""
    return load_script(script or registration_script(), "homeci_drone_register")


def chart_values(*values_files: Path, chart: Path | None = None) -> dict[str, Any]:
    """The chart's values.yaml merged with ``values_files`` like Helm does (maps deep, lists replaced)."""
    base = chart or chart_dir()
    merged: dict[str, Any] = yaml.safe_load((base / "values.yaml").read_text()) or {}
    for f in values_files:
        merged = _merge(merged, yaml.safe_load(Path(f).read_text()) or {})
    return merged


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        current = out.get(key)
        out[key] = _merge(current, value) if isinstance(value, dict) and isinstance(current, dict) else value
    return out


def template_files() -> dict[str, Path]:
    """The Drone templates the chart ships (name -> file)."""
    folder = chart_dir() / "files" / "templates"
    return {p.name: p for p in sorted(folder.glob("*.y*ml"))}


def is_template_config(drone_yml: str) -> bool:
    """True when Drone would treat this .drone.yml as a template reference."""
    return bool(_TEMPLATE_KIND.search(drone_yml))


def template_inputs(template_text: str) -> set[str]:
    """Every ``.input.<name>`` a template reads."""
    return set(_INPUT_REF.findall(template_text))


def template_data(
    inputs: dict[str, Any] | None = None,
    *,
    owner: str = "homeci",
    name: str = "sample-app",
    branch: str = "main",
    commit: str = "0123456789abcdef0123456789abcdef01234567",
    pushed: str | None = None,
) -> dict[str, Any]:
    """The data Drone passes to a YAML template, for a push to branch ``pushed`` (default: the
    repository's default branch ``branch``) of ``owner/name``.

    ``repo`` and ``build`` use drone-go's JSON names; the renderer decodes them into structs, so a
    template reads them by Go field name (``.repo.Name``, ``.repo.Branch``, ``.build.Target``)."""
    target = pushed or branch
    return {
        "input": copy.deepcopy(inputs or {}),
        "repo": {
            "namespace": owner,
            "name": name,
            "slug": f"{owner}/{name}",
            "scm": "",
            "default_branch": branch,
            "config_path": ".drone.yml",
            "private": False,
            "active": True,
            "trusted": False,
        },
        "build": {
            "event": "push",
            "target": target,
            "source": target,
            "ref": f"refs/heads/{target}",
            "after": commit,
        },
    }


class GoTemplateRenderer:
    """Render Go ``text/template`` text with Go itself (the program is built once and cached)."""

    def __init__(self, cache: Path | None = None, go: str | None = None) -> None:
        self.go = go or shutil.which("go") or ""
        self.cache = cache or paths.cache_dir() / "drone-template-render"
        self._binary: Path | None = None

    def binary(self) -> Path:
        if self._binary is not None:
            return self._binary
        if not self.go:
            raise HomeciError("Go is not installed (needed to render Drone templates): install Go >= 1.21")
        digest = hashlib.sha256(_GO_PROGRAM.encode()).hexdigest()[:12]
        target = self.cache / digest / "render"
        if not target.is_file():
            src = self.cache / digest / "src"
            src.mkdir(parents=True, exist_ok=True)
            (src / "go.mod").write_text("module homeci.local/render\n\ngo 1.21\n")
            (src / "main.go").write_text(_GO_PROGRAM)
            env = dict(os.environ, CGO_ENABLED="0", GOTOOLCHAIN="local")
            # Build beside the target and rename: concurrent runs never see a half-written binary.
            partial = target.with_name(f"render.{os.getpid()}.tmp")
            proc = subprocess.run(
                [self.go, "build", "-o", str(partial), "."],
                cwd=src,
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
            if proc.returncode != 0:
                raise HomeciError(f"building the Go template renderer failed: {proc.stderr.strip()[:500]}")
            os.replace(partial, target)
        self._binary = target
        return target

    def render(self, text: str, data: dict[str, Any], *, workdir: Path) -> str:
        """The rendered text; :class:`HomeciError` with Go's message when parsing or executing fails."""
        workdir.mkdir(parents=True, exist_ok=True)
        tpl = workdir / "template.yaml"
        dat = workdir / "data.json"
        tpl.write_text(text, encoding="utf-8")
        dat.write_text(json.dumps(data), encoding="utf-8")
        proc = subprocess.run(
            [str(self.binary()), str(tpl), str(dat)], capture_output=True, text=True, check=False, timeout=60
        )
        if proc.returncode != 0:
            raise HomeciError(f"Go text/template failed: {proc.stderr.strip()}")
        return proc.stdout


def parse_pipeline(rendered: str) -> dict[str, Any]:
    """The single pipeline document a rendered template must be."""
    docs = [d for d in yaml.safe_load_all(rendered) if d is not None]
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise HomeciError(f"a rendered template must be one YAML mapping, got {len(docs)} document(s)")
    doc: dict[str, Any] = docs[0]
    return doc
