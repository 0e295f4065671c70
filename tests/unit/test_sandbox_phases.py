"""A teardown's extra steps (Phase.then) run in order, and one that fails does not stop the rest."""

from __future__ import annotations

from pathlib import Path

from homeci.cluster.sandbox.box import Phase, Sandbox


def test_a_failing_step_does_not_stop_the_teardown(tmp_path: Path) -> None:
    state = tmp_path / "node"
    state.mkdir()
    ran: list[str] = []

    def broken() -> None:
        ran.append("broken")
        raise RuntimeError("ctr went away")

    box = Sandbox("node", state)
    box.destroy((Phase(then=broken), Phase(then=lambda: ran.append("second"))))
    assert ran == ["broken", "second"], f"steps run: {ran}"
    assert not box.state_left(), f"{state} left: {box.state_left()}"
