"""same_htpasswd_login: a rehashed htpasswd line passes only with the same user and password."""
from __future__ import annotations

import base64

import bcrypt

from homeci_testing.daytwo import same_htpasswd_login


def _data(user: str, password: str, line_password: str, cost: int) -> dict[str, str]:
    hashed = bcrypt.hashpw(line_password.encode(), bcrypt.gensalt(cost)).decode()
    raw = {"username": user, "password": password, "htpasswd": f"{user}:{hashed}\n"}
    return {k: base64.b64encode(v.encode()).decode() for k, v in raw.items()}


def test_a_rehash_with_the_same_login_passes() -> None:
    before = _data("homeci", "s3cret", "s3cret", 10)
    assert same_htpasswd_login(before, _data("homeci", "s3cret", "s3cret", 5)) is None


def test_a_line_for_another_password_or_user_fails() -> None:
    before = _data("homeci", "s3cret", "s3cret", 5)
    assert same_htpasswd_login(before, _data("homeci", "s3cret", "other", 4)) == (
        "the htpasswd line does not accept the kept password")
    assert same_htpasswd_login(before, _data("homeci", "changed", "changed", 4)) == "password changed"
    assert same_htpasswd_login(before, _data("admin", "s3cret", "s3cret", 4)) == "username changed"
