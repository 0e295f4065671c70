"""The registry part of the backup archive with the real registry v3.1.2: the chart script's dump (what
the scheduled backup runs, and `homeci backup` through its own connection) reads every repository and tag
through the API — more repositories than one catalog page — and `homeci restore`'s loader pushes them
into an empty registry, where every image pulls with matching digests."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from homeci.backup import images
from homeci.backup.script import SCRIPT
from homeci.flow.clients import Registry
from homeci.flow.web import Response
from homeci_testing.realprog_harness import Direct, LoopbackRegistry, binary, render


class PlainWeb:
    """The :class:`homeci.flow.web.Web` of the CLI's registry client, over plain HTTP to loopback."""

    def __init__(self, url: str) -> None:
        self.url = url

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                body: bytes | None = None, timeout: float = 30.0) -> Response:
        path = url.split("://", 1)[1].split("/", 1)[1]
        req = urllib.request.Request(f"{self.url}/{path}", data=body, method=method,
                                     headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def test_the_scheduled_dump_restores_into_an_empty_registry(tmp_path: Path) -> None:
    objs = render("default")
    names = [f"homeci/app-{i:02d}" for i in range(3)]
    with LoopbackRegistry(objs, tmp_path / "source", binary("registry")) as server:
        client = Direct(server, objs)
        for name in names:
            for tag in ("v1", "v2"):
                assert client.push_image(name, tag, f"{name}:{tag}")[0] == 201
        user, password = _credentials(client)
        reg = SCRIPT.Registry(server.url, user, password)
        # one catalog page holds two repositories: the dump must follow the registry's Link header
        reg_page = _small_pages(reg)
        listed = reg_page.dump(tmp_path / "dump")
        # `homeci backup` reaches the registry through its own Web (a port-forward in a cluster)
        cli = images.dump(Registry(PlainWeb(server.url), "http://registry", user, password), tmp_path / "cli")
    assert (tmp_path / "cli/index.json").read_text() == (tmp_path / "dump/index.json").read_text()
    assert cli == listed
    assert sorted(p.name for p in (tmp_path / "cli/blobs/sha256").iterdir()) == sorted(
        p.name for p in (tmp_path / "dump/blobs/sha256").iterdir())
    assert listed == sorted(f"{n}:{t}" for n in names for t in ("v1", "v2")), listed
    index = json.loads((tmp_path / "dump/index.json").read_text())
    assert sorted(index["repositories"]) == names

    with LoopbackRegistry(objs, tmp_path / "target", binary("registry")) as server:
        client = Direct(server, objs)
        user, password = _credentials(client)
        target = Registry(PlainWeb(server.url), "http://registry", user, password)
        loaded = images.load(target, tmp_path / "dump")
        assert loaded == 6
        for name in names:
            for tag in ("v1", "v2"):
                assert not client.pulls_intact(name, tag), client.pulls_intact(name, tag)


def _credentials(client: Direct) -> tuple[str, str]:
    import base64

    user, _, password = base64.b64decode(client.auth.split()[1]).decode().partition(":")
    return user, password


def _small_pages(reg: Any) -> Any:
    """The script's client asking for catalog pages of two repositories."""
    original = reg.get

    def get(path: str, accept: str | None = None) -> Any:
        return original(path.replace("/v2/_catalog?n=500", "/v2/_catalog?n=2"), accept)

    reg.get = get
    return reg
