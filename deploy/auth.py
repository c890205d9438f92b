"""Optional login for the explorer, from the environment.

    APP_AUTH=user:password            one account
    APP_AUTH_FILE=/path/to/file       one `user:password` a line (blank lines and # comments skipped)

Both may be set (the accounts add up). Neither: no login. The password may contain ':'.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


class AuthConfigError(ValueError):
    """APP_AUTH / APP_AUTH_FILE is set but unusable; the message says why."""


def parse_auth(env: Mapping[str, str] | None = None) -> list[tuple[str, str]] | None:
    """The (user, password) pairs for Gradio's `auth=`, or None when no login is configured."""
    env = os.environ if env is None else env
    accounts: list[tuple[str, str]] = []
    inline = (env.get("APP_AUTH") or "").strip()
    if inline:
        accounts.append(_account(inline, "APP_AUTH"))
    file_name = (env.get("APP_AUTH_FILE") or "").strip()
    if file_name:
        path = Path(file_name)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise AuthConfigError(f"APP_AUTH_FILE={file_name}: cannot read it ({error.strerror or error})") from error
        before = len(accounts)
        for number, line in enumerate(lines, start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                accounts.append(_account(line.strip(), f"APP_AUTH_FILE line {number}"))
        if len(accounts) == before:
            raise AuthConfigError(f"APP_AUTH_FILE={file_name} holds no user:password line")
    return accounts or None


def _account(text: str, where: str) -> tuple[str, str]:
    user, sep, password = text.partition(":")
    if not sep or not user.strip() or not password:
        raise AuthConfigError(f"{where}: expected user:password (both non-empty)")
    return user.strip(), password
