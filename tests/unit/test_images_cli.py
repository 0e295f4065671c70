"""``images list|build`` (mounted as ``homeci cluster local images``)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from homeci import images, ui
from homeci.commands.images import group
from homeci.errors import HomeciError


def test_list_shows_every_referenced_image_and_its_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui.out, "_width", 400)  # a wide table: no image name is wrapped
    result = CliRunner().invoke(group, ["list", "--all"])
    assert result.exit_code == 0, result.output
    for ref in (images.PAUSE_IMAGE, images.COREDNS_IMAGE, "docker.io/drone/placeholder:1",
                "docker.io/plugins/kaniko:1.13.9"):
        assert ref in result.output
    assert "DRONE_IMAGE_PLACEHOLDER" in result.output  # --all says where


def test_build_of_an_image_without_recipe_fails_before_building() -> None:
    result = CliRunner().invoke(group, ["build", "nginx:1.29"])
    assert isinstance(result.exception, HomeciError)
    assert "nginx:1.29 has no recipe" in str(result.exception)


@pytest.mark.parametrize("command", ["list", "build"])
def test_help(command: str) -> None:
    result = CliRunner().invoke(group, [command, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
