"""``images list|build`` (mounted as ``homeci cluster images``)."""

from __future__ import annotations

import pytest

from homeci import images, ui
from homeci_testing.support import run_cli

IMAGES = ("cluster", "images")


def test_list_shows_every_referenced_image_and_its_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ui.out, "_width", 400)  # a wide table: no image name is wrapped
    result = run_cli(*IMAGES, "list", "--all")
    assert result.exit_code == 0, result.stderr
    for ref in (images.PAUSE_IMAGE, images.COREDNS_IMAGE, "docker.io/drone/placeholder:1",
                "docker.io/plugins/kaniko:1.13.9"):
        assert ref in result.stdout
    assert "DRONE_IMAGE_PLACEHOLDER" in result.stdout  # --all says where


def test_build_of_an_image_without_recipe_fails_before_building() -> None:
    result = run_cli(*IMAGES, "build", "nginx:1.29")
    # a HomeciError, reported by homeci.cli.main as one "homeci: error:" line (not an internal error)
    assert result.exit_code != 0 and result.stderr.startswith("homeci: error: "), result.stderr
    assert "nginx:1.29 has no recipe" in result.stderr


@pytest.mark.parametrize("command", ["list", "build"])
def test_help(command: str) -> None:
    result = run_cli(*IMAGES, command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.stdout
