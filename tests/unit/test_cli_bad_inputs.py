"""Every ``homeci`` command fed bad input ends in one line that names the file or option, never a traceback.

The commands are discovered from the click tree in ``homeci.cli`` (a new command or option is covered
without editing this file) and each gets:

* an unknown flag and an unexpected extra argument;
* for every file or directory it takes: a binary file, an empty file, a missing path, a directory, and
  a path whose parent is a file (tests run as root, so a mode-000 file would still be readable);
* an invalid name for every name-like option, ``-1`` and ``abc`` for every integer option, an unknown
  value for every choice;
* for the commands that talk to a cluster: a kubeconfig pointing at 127.0.0.1:1, which must fail with a
  clear line within seconds.

Each case runs the real ``main()`` in-process (an interpreter per case would cost minutes on two cores),
with the cache, the toolchain and the checkout (``HOMECI_ROOT``) redirected to scratch directories and
``go`` and Docker off PATH, so no case can start a cluster, build a tool or write into the repository.
Inputs a command may legitimately accept (an empty values file, a directory that does not exist yet)
are run only for the commands in ``RUN_ACCEPTED``, which do no such work.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import click
import pytest

from homeci import ca, paths, toolchain
from homeci.cli import cli
from homeci.commands import params
from homeci_testing.support import ROOT, run_cli

GOOD = ROOT / "tests" / "fixtures" / "charts" / "good"
SAMPLE_APP = paths.sample_app()
UNREACHABLE = "https://127.0.0.1:1"
DEADLINE = 60  # seconds any one case may take; a case that hangs fails

# Valid values for the required parameters (click param names), so each case reaches the one bad input.
# A new command with a required parameter needs an entry: test_every_required_parameter_has_a_value says so.
REQUIRED: dict[str, dict[str, str]] = {
    "render": {"chart": "{good}"},
    "ca init": {"directory": "{new_dir}"},
    "ca verify": {"target": "{ca}", "ca_file": "{ca}", "host": "x.test"},
}


def _good_archive() -> str:
    """A small archive `homeci restore` accepts (so its other parameters are reached), removed at exit."""
    import atexit
    import tempfile

    from homeci.backup import archive

    folder = Path(tempfile.mkdtemp(prefix="homeci-bad-inputs-"))
    atexit.register(shutil.rmtree, folder, True)
    w = archive.Writer(folder / "staging")
    w.put_json("helm/homeci.json", {"release": "homeci", "chart": "homeci-umbrella", "version": "0.1.0",
                                    "values": {}})
    w.put_json("kubernetes/secrets.json", [])
    m = archive.Manifest("2026-01-01T00:00:00Z", "0.1.0", {"release": "homeci", "namespace": "homeci"}, {},
                         {"homeci": {"chart": "homeci-umbrella", "version": "0.1.0"}}, {})
    return str(w.pack(m, folder / "backup.tar.gz"))


GOOD_ARCHIVE = _good_archive()
REQUIRED["restore"] = {"archive": GOOD_ARCHIVE}
# Extra arguments that take a cluster command to its first API call.
CLUSTER_ARGS: dict[str, list[str]] = {
    "backup": [],
    "ca show": ["--secret", "homeci-ca"],
    "restore": [GOOD_ARCHIVE],
    "smoke": ["--app", str(SAMPLE_APP)],
    "status": [],
}
# Commands that only read their input, print, or write where they are told: accepted input runs to the end.
RUN_ACCEPTED = {"render", "node-config", "ca init", "ca show", "ca verify", "smoke", "lint", "status"}
# String parameters that are paths (a chart name or directory, a certificate file or HOST:PORT).
PATH_ARGUMENTS = {"chart", "charts", "target"}
# Options whose value is a Kubernetes or DNS name.
NAME_OPTIONS = {"name", "namespace", "release", "target", "repo", "secret", "domain", "host", "registry_host"}


def _commands() -> Iterator[tuple[str, click.Command]]:
    ctx = click.Context(cli, info_name="homeci")

    def walk(cmd: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        yield path, cmd
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None, f"`homeci {path} {name}` is listed but cannot be loaded"
                yield from walk(sub, f"{path} {name}".strip())

    yield from walk(cli, "")


COMMANDS = dict(_commands())
LEAVES = {path: cmd for path, cmd in COMMANDS.items() if not isinstance(cmd, click.Group)}


@dataclass(frozen=True)
class Case:
    command: str
    what: str
    bad: dict[str, str]          # param name -> value (placeholders like {binary} filled in at run time)
    extra: tuple[str, ...] = ()  # raw argv appended after the parameters
    must_fail: bool = True
    names: tuple[str, ...] = ()  # the error line must contain one of these (the value or the option)

    @property
    def id(self) -> str:
        return f"{self.command or 'homeci'}: {self.what}"


def _param(cmd: click.Command, name: str) -> click.Parameter:
    return next(p for p in cmd.params if p.name == name)


def _labels(p: click.Parameter) -> tuple[str, ...]:
    return (*p.opts, p.human_readable_name)


def _path_cases(path: str, cmd: click.Command, p: click.Parameter) -> Iterator[Case]:
    """The five bad paths, with what each must do given what the parameter declares it takes."""
    t = p.type
    if isinstance(t, click.Path):
        file_only, dir_only, exists = not t.dir_okay, not t.file_okay, bool(t.exists)
    elif isinstance(p, click.Argument) and p.name in PATH_ARGUMENTS:
        file_only = dir_only = False
        exists = True  # a chart or a certificate has to be there
    else:
        return
    for kind, fails in (("binary", True), ("empty", dir_only or p.name in PATH_ARGUMENTS),
                        ("missing", exists), ("directory", file_only or p.name in PATH_ARGUMENTS),
                        ("under_file", True)):
        # a kubeconfig is read only on the way to the cluster
        required = set(REQUIRED.get(path, {}).values())
        cluster = [a for a in CLUSTER_ARGS.get(path, []) if a not in required]
        extra = tuple(cluster) if p.name == "kubeconfig" else ()
        yield Case(path, f"{p.name}={kind}", {str(p.name): f"{{{kind}}}"}, extra, must_fail=fails,
                   names=(f"{{{kind}}}", *_labels(p)))


def _value_cases(path: str, p: click.Parameter) -> Iterator[Case]:
    if not isinstance(p, click.Option) or p.is_flag:
        return
    t = p.type
    if isinstance(t, click.types.IntParamType):
        for value in ("-1", "abc"):
            yield Case(path, f"{p.name}={value}", {str(p.name): value}, names=_labels(p))
    elif isinstance(t, click.Choice):
        yield Case(path, f"{p.name}=bogus-choice", {str(p.name): "bogus-choice"}, names=_labels(p))
    elif p.name in NAME_OPTIONS:
        yield Case(path, f"{p.name}='Bad Name!'", {str(p.name): "Bad Name!"}, names=_labels(p))


def _cases() -> Iterator[Case]:
    for path, cmd in COMMANDS.items():
        yield Case(path, "unknown flag", {}, ("--no-such-flag",), names=("--no-such-flag",))
        if isinstance(cmd, click.Group):
            continue
        if not any(isinstance(p, click.Argument) and p.nargs == -1 for p in cmd.params):
            yield Case(path, "extra argument", {}, ("unexpected-extra-arg",), names=("unexpected-extra-arg",))
        for p in cmd.params:
            yield from _path_cases(path, cmd, p)
            yield from _value_cases(path, p)


CASES = list(_cases())
# Bad input still taken too far by commands another change owns; strict, so a fix turns them into failures
# here until the entry is removed.
KNOWN: dict[str, str] = {}
PARAMS = [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=KNOWN[c.id])]
                       if c.id in KNOWN else []) for c in CASES]


class Hung(BaseException):
    """Raised by the alarm: not an Exception, so homeci's last-resort handler cannot swallow it."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise Hung


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("bad-inputs")
    (base / "blob.bin").write_bytes(bytes(range(256)) * 4)
    (base / "empty.yaml").write_bytes(b"")
    (base / "a-directory").mkdir()
    (base / "a-file").write_text("x\n")
    cert, _ = ca.new_ca("bad-inputs CA", 2)
    (base / "ca.crt").write_bytes(ca.cert_pem(cert))
    (base / "kubeconfig").write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        f"clusters: [{{name: c, cluster: {{server: '{UNREACHABLE}', insecure-skip-tls-verify: true}}}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n")
    return {
        "binary": str(base / "blob.bin"), "empty": str(base / "empty.yaml"),
        "missing": str(base / "missing"), "directory": str(base / "a-directory"),
        "under_file": str(base / "a-file" / "below"), "ca": str(base / "ca.crt"),
        "kubeconfig": str(base / "kubeconfig"), "good": str(GOOD), "base": str(base),
    }


@pytest.fixture(scope="module", autouse=True)
def isolated(files: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Nothing a case does can reach the real cache, toolchain, checkout, Go or Docker."""
    scratch = tmp_path_factory.mktemp("scratch")
    root = scratch / "checkout"  # a copy of what the commands read from a checkout
    shutil.copytree(ROOT / "charts", root / "charts")
    for name in ("pyproject.toml", "CHANGELOG.md"):
        if (ROOT / name).is_file():
            shutil.copy(ROOT / name, root / name)
    helm = {}
    for name, env in (("helm3", "HOMECI_HELM3"), ("helm4", "HOMECI_HELM4")):
        state, binary = toolchain.status(name)
        if binary is not None and state != "stale":
            helm[env] = str(binary)
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HOMECI_LOCAL_WORKDIR", "HOMECI_SIM_WORKDIR", "HOMECI_DEBUG"):
            mp.delenv(var, raising=False)
        mp.setenv("HOMECI_ROOT", str(root))
        mp.setenv("HOMECI_CACHE", str(scratch / "cache"))
        mp.setenv("HOMECI_TOOLCHAIN", str(scratch / "toolchain"))
        mp.setenv("KUBECONFIG", files["kubeconfig"])
        mp.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        mp.setenv("COLUMNS", "200")
        for env, binary in helm.items():
            mp.setenv(env, binary)
        yield


def _argv(case: Case, files: dict[str, str], new_dir: str) -> list[str]:
    cmd = COMMANDS[case.command]
    values = {k: v for k, v in REQUIRED.get(case.command, {}).items() if k not in case.bad}
    values.update(case.bad)
    fill = {**files, "new_dir": new_dir}
    options: list[str] = []
    arguments: list[str] = []
    for p in cmd.params:
        if p.name not in values:
            continue
        value = values[str(p.name)].format(**fill)
        if isinstance(p, click.Argument):
            arguments.append(value)
        else:
            options += [p.opts[0], value]
    return [*case.command.split(), *options, *arguments, *case.extra]


def invoke(argv: list[str], *, deadline: int = DEADLINE) -> tuple[int, str]:
    """Run ``homeci argv`` in-process (support.run_cli, from the current directory): (exit code, stderr);
    fails the test if it runs past ``deadline``."""
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(deadline)
    try:
        result = run_cli(*argv, cwd=None)
    except Hung:
        pytest.fail(f"homeci {' '.join(argv)}: still running after {deadline}s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return result.exit_code, result.stderr


def check_one_line(argv: list[str], code: int, err: str, names: tuple[str, ...]) -> str:
    shown = f"homeci {' '.join(argv)}"
    assert "Traceback" not in err and "internal error" not in err, f"{shown}: {err}"
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"{shown}: exit {code}, expected one line on stderr, got {err!r}"
    assert lines[0].startswith("homeci: error: "), f"{shown}: {lines[0]!r}"
    assert any(n in lines[0] for n in names), f"{shown}: the error names none of {names}: {lines[0]!r}"
    return lines[0]


@pytest.mark.parametrize("case", PARAMS)
def test_bad_input_ends_in_one_line(case: Case, files: dict[str, str], tmp_path: Path) -> None:
    if not case.must_fail and case.command not in RUN_ACCEPTED:
        pytest.skip(f"`homeci {case.command}` may accept {case.what} and then start real work")
    argv = _argv(case, files, str(tmp_path / "new-dir"))
    code, err = invoke(argv)
    if case.must_fail:
        assert code != 0, f"homeci {' '.join(argv)}: exit 0 for bad input"
    if code != 0:
        fill = {**files, "new_dir": str(tmp_path / "new-dir")}
        check_one_line(argv, code, err, tuple(n.format(**fill) for n in case.names))
    else:
        assert "Traceback" not in err, err


def test_the_walk_finds_every_command() -> None:
    for path in ("lint", "render", "ca init", "ca show", "ca verify", "node-config", "package", "smoke",
                 "toolchain install", "toolchain list", "cluster up", "cluster down", "cluster status",
                 "cluster kubeconfig", "cluster install", "cluster images build", "cluster images load"):
        assert path in LEAVES, f"`homeci {path}` is not in the command tree: {sorted(LEAVES)}"
    # every file-taking parameter got its five bad paths
    for path, cmd in LEAVES.items():
        for p in cmd.params:
            if isinstance(p.type, click.Path) or (isinstance(p, click.Argument) and p.name in PATH_ARGUMENTS):
                whats = {c.what for c in CASES if c.command == path and c.bad.keys() == {p.name}}
                assert len(whats) == 5, f"homeci {path} {p.human_readable_name}: cases {whats}"


def test_every_required_parameter_has_a_value() -> None:
    for path, cmd in LEAVES.items():
        for p in cmd.params:
            if p.required:
                assert str(p.name) in REQUIRED.get(path, {}), (
                    f"`homeci {path}` requires {p.human_readable_name}: add a valid value for {p.name!r} to "
                    "REQUIRED in this module so its bad-input cases reach the input under test")


def test_values_file_options_share_one_check() -> None:
    """Every option that takes values files checks them when the command line is parsed."""
    found = [(path, p) for path, cmd in LEAVES.items() for p in cmd.params
             if p.name in ("values", "values_file", "values_files")]
    assert len(found) >= 4, found
    for path, p in found:
        assert isinstance(p.type, params.ValuesFile), f"homeci {path} {p.opts}: type {p.type!r}"


CLUSTER_COMMANDS = sorted(path for path, cmd in LEAVES.items()
                          if any(p.name == "kubeconfig" for p in cmd.params))
# A refused connection is noticed at once; this bound only tells a hang (urllib3 retrying, no timeout).
CLUSTER_DEADLINE = 30


@pytest.mark.parametrize("via", ["--kubeconfig", "KUBECONFIG"])
@pytest.mark.parametrize("command", CLUSTER_COMMANDS)
def test_unreachable_cluster_fails_fast_in_one_line(command: str, via: str, files: dict[str, str]) -> None:
    argv = [*command.split(), *CLUSTER_ARGS.get(command, [])]
    if via == "--kubeconfig":
        argv += ["--kubeconfig", files["kubeconfig"]]
    code, err = invoke(argv, deadline=CLUSTER_DEADLINE)
    assert code != 0
    line = check_one_line(argv, code, err, (UNREACHABLE,))
    assert line == (f"homeci: error: cannot reach the API server {UNREACHABLE} (Connection refused) named in "
                    f"kubeconfig {files['kubeconfig']}: is the cluster up, and is this its kubeconfig?")


def test_cluster_commands_are_known() -> None:
    assert sorted(CLUSTER_ARGS) == CLUSTER_COMMANDS, (
        f"commands with --kubeconfig {CLUSTER_COMMANDS}: give each the arguments that reach its first API "
        "call in CLUSTER_ARGS")


@pytest.mark.parametrize("kubeconfig", ["binary", "empty", "directory"])
def test_unusable_kubeconfig_from_the_environment_is_named(kubeconfig: str, files: dict[str, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """$KUBECONFIG is not checked by click: the command itself names it."""
    monkeypatch.setenv("KUBECONFIG", files[kubeconfig])
    argv = ["smoke", *CLUSTER_ARGS["smoke"]]
    code, err = invoke(argv)
    assert code == 1
    line = check_one_line(argv, code, err, (files[kubeconfig],))
    assert "pass --kubeconfig" in line


def test_render_accepts_dev_null_and_an_empty_values_file(files: dict[str, str]) -> None:
    if "HOMECI_HELM3" not in os.environ:
        pytest.skip("helm3 is not built yet: homeci toolchain install helm3")
    for values in ("/dev/null", files["empty"]):
        code, err = invoke(["render", str(GOOD), "-f", values])
        assert code == 0, f"render -f {values}: {err}"
