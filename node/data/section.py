"""What every config section shares: its TOML table name, range checks that name the
dotted key, and the one way timestamps are read as UTC."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import pandas as pd

from node.errors import ConfigError


class InvalidValue(ConfigError):
    """A field's value is out of range; carries the dotted key for the loader."""

    def __init__(self, key: str, expected: str, value: object) -> None:
        super().__init__(f"{key}: expected {expected}, got {value!r}")
        self.key, self.expected, self.value = key, expected, value


class Section:
    """Mixin giving each section its TOML table name and a check helper."""

    section: ClassVar[str]

    def _require(self, condition: bool, name: str, expected: str) -> None:
        if not condition:
            raise InvalidValue(f"{self.section}.{name}", expected, getattr(self, name))


def as_utc_index(timestamps: Iterable[Any]) -> pd.DatetimeIndex:
    """Timestamps as a UTC index; timezone-naive ones are taken as UTC."""
    index = pd.DatetimeIndex(timestamps)
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
