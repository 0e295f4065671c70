"""Console output keeps text verbatim: fingerprints and paths contain emoji shortcodes such as ':cd:'."""

from __future__ import annotations

from homeci import ui


def test_console_prints_colon_codes_verbatim() -> None:
    text = "sha256 fingerprint: 1A:AB:69:67:CD:A5"
    for console in (ui.out, ui.console):
        with console.capture() as captured:
            console.print(text, markup=False, soft_wrap=True)
        assert captured.get().strip() == text, f"{console!r} rewrote {text!r} to {captured.get()!r}"
