"""What an identity may be called (checked where no model is loaded: the gateway)."""

from __future__ import annotations

import re

from lipdub.errors import BadOptionError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise BadOptionError(
            f"Identity name '{name}' is not allowed.",
            "Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.",
        )
    return name
