"""A real browser for the person tier: Debian's Chromium driven by Playwright, trusting the homeci CA
through its own certificate store.

No ``--ignore-certificate-errors`` and no ``ignore_https_errors``: the browser gets a throw-away HOME
whose NSS database (``$HOME/.pki/nssdb``, what Chromium on Linux reads) trusts exactly the homeci CA
as an extra root, and a host-resolver rule that sends every ``*.<domain>`` name to the stack's loopback
forwarder, so the URL keeps the public name (and its port) as a person's browser would see it.
Screenshots of every page a test checks go to ``$HOMECI_ARTIFACTS`` (or a folder the caller gives).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = "/usr/bin/chromium"
# What a person's browser does, minus what cannot work on a machine without internet: no background
# updates, sync or component downloads (they only fail, many at a time).
_QUIET = ["--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--no-first-run", "--disable-quic", "--disable-gpu"]


def missing() -> str | None:
    """Why the browser tier cannot run here, or None: the apt packages and the PyPI package it needs."""
    if not Path(CHROMIUM).exists():
        return "Chromium is not installed: apt-get install chromium libnss3-tools"
    if shutil.which("certutil") is None:
        return "certutil is not installed: apt-get install libnss3-tools"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install -e '.[dev]' (it brings playwright)"
    return None


def nss_home(ca_file: Path, root: Path) -> Path:
    """A HOME whose NSS database trusts ``ca_file`` as a root for websites (and nothing else extra)."""
    home = root / "home"
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True, exist_ok=True)
    for args in (["-N", "--empty-password"], ["-A", "-t", "C,,", "-n", "homeci", "-i", str(ca_file)]):
        proc = subprocess.run(["certutil", "-d", f"sql:{db}", *args], capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"certutil {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return home


@dataclass
class Shots:
    """Screenshots, numbered in the order they were taken: ``01-gogs-login.png`` ..."""

    folder: Path
    taken: list[Path] = field(default_factory=list)

    def take(self, page: Page, name: str, *, full_page: bool = False) -> Path:
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        path = self.folder / f"{len(self.taken) + 1:02d}-{slug}.png"
        page.screenshot(path=str(path), full_page=full_page)
        self.taken.append(path)
        return path


def copy_tour(shots: Shots, names: dict[str, str], folder: Path) -> list[Path]:
    """Copy the screenshots named in ``names`` (a Shots name -> file name) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for taken in shots.taken:
        slug = taken.name.split("-", 1)[1].removesuffix(".png")
        for name, target in names.items():
            if re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") == slug:
                shutil.copyfile(taken, folder / target)
                copied.append(folder / target)
    return copied


@dataclass
class Person:
    """One browser, as one person uses it; ``fresh()`` is a new profile (no cookies), like another browser."""

    browser: Browser
    base_port: int
    domain: str
    shots: Shots
    contexts: list[BrowserContext] = field(default_factory=list)

    def url(self, label: str, path: str = "/") -> str:
        port = "" if self.base_port == 443 else f":{self.base_port}"
        return f"https://{label}.{self.domain}{port}{path}"

    def fresh(self) -> Page:
        ctx = self.browser.new_context(viewport={"width": 1280, "height": 860})
        ctx.set_default_timeout(30_000)
        self.contexts.append(ctx)
        return ctx.new_page()


@contextmanager
def chromium(ca_file: Path, *, domain: str, port: int, artifacts: Path | None = None,
             also_resolve: tuple[str, ...] = ()) -> Iterator[Person]:
    """Start Chromium trusting ``ca_file``, resolving ``*.<domain>`` (and ``also_resolve``) to 127.0.0.1;
    yields a Person."""
    from playwright.sync_api import sync_playwright

    folder = artifacts or Path(os.environ.get("HOMECI_ARTIFACTS")
                               or tempfile.mkdtemp(prefix="homeci-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="homeci-browser-") as tmp:
        home = nss_home(ca_file, Path(tmp))
        env: dict[str, Any] = {**os.environ, "HOME": str(home)}
        rules = ", ".join(f"MAP {name} 127.0.0.1" for name in (f"*.{domain}", *also_resolve))
        args = [*_QUIET, f"--host-resolver-rules={rules}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to start its sandbox as root
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=args, env=env)
            person = Person(browser, port, domain, Shots(folder))
            try:
                yield person
            finally:
                for ctx in person.contexts:
                    ctx.close()
                browser.close()
