"""The one place where command-line output is written (library code logs instead)."""

from __future__ import annotations

import json
import sys
from typing import Any


def say(text: str = "") -> None:
    """Print a line for the user on stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def error(text: str) -> None:
    """Print an error for the user on stderr."""
    sys.stderr.write(f"error: {text}\n")
    sys.stderr.flush()


def table(rows: list[tuple[str, Any]]) -> None:
    """Print aligned ``key  value`` rows."""
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        if isinstance(value, dict):
            value = json.dumps(value, sort_keys=True)
        say(f"  {key:<{width}}  {value}")
