"""The community config as a form: its fields with their documentation, values as text
and back, and the TOML file a form saves.

The documentation of every field is the comment above it in
``examples/community.toml`` (the file the README points to), so a form's tooltip
and the example file say the same. A form's values are read back through
``config_from_mapping``: a bad value is refused with the same message, naming the
dotted key, as a bad file is.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from node.data.config import CommunityConfig, config_from_mapping
from node.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "community.toml"
# Fields whose values are one of a few words: the form offers them as a choice.
CHOICES = {"market.mechanism": ("community", "auction"), "market.pricing": ("uniform", "pay_as_bid")}


@dataclass(frozen=True)
class FormField:
    key: str  # dotted: "tariffs.buy_per_kwh"
    section: str
    name: str
    kind: str  # "int", "float", "str", "time", "pair", "choice"
    value: str  # as the form shows it
    doc: str
    choices: tuple[str, ...] = ()


def field_docs(example: Path = EXAMPLE) -> dict[str, str]:
    """{dotted key: the comment above it} from the example config file ({} without it)."""
    try:
        lines = example.read_text().splitlines()
    except OSError:
        return {}
    docs, section, comment = {}, None, []
    for line in lines:
        text = line.strip()
        if (header := re.fullmatch(r"\[(\w+)\]", text)) is not None:
            section, comment = header.group(1), []
        elif text.startswith("#"):
            comment.append(text.lstrip("#").strip())
        elif (key := re.match(r"(\w+)\s*=", text)) is not None and section is not None:
            docs[f"{section}.{key.group(1)}"] = " ".join(comment)
            comment = []
        else:
            comment = []
    return docs


def form_fields(config: CommunityConfig) -> list[FormField]:
    """Every field of `config`, in the order of its sections, as the form shows it."""
    docs = field_docs()
    out = []
    for section in dataclasses.fields(CommunityConfig):
        table = getattr(config, section.name)
        hints = typing.get_type_hints(type(table))
        for f in dataclasses.fields(table):
            key = f"{section.name}.{f.name}"
            out.append(FormField(key, section.name, f.name, _kind(key, hints[f.name]), _text(getattr(table, f.name)),
                                 docs.get(key, ""), CHOICES.get(key, ())))
    return out


def config_from_form(values: Mapping[str, str], source: str = "the form") -> CommunityConfig:
    """The config a form's values ({dotted key: text}) describe; ConfigError naming the
    key for anything that is not a value of the field's type or is out of range."""
    document: dict[str, dict[str, Any]] = {}
    for f in form_fields(CommunityConfig()):
        raw = str(values.get(f.key, "")).strip()
        if raw == "":
            continue  # left empty: the default
        document.setdefault(f.section, {})[f.name] = _parse(f, raw, source)
    return config_from_mapping(document, source)


def config_to_toml(config: CommunityConfig) -> str:
    """`config` as a TOML file that load_config reads back equal, every field preceded by
    its documentation (as in examples/community.toml)."""
    lines = ["# GridLedger community configuration, saved from the web UI.",
             "# Every field is documented in examples/community.toml.", ""]
    section = None
    for f in form_fields(config):
        if f.section != section:
            section = f.section
            lines += [""] * bool(lines[-1]) + [f"[{section}]"]
        if f.doc:
            lines += [f"# {chunk}" for chunk in _wrap(f.doc)]
        lines.append(f"{f.name} = {_toml(f)}")
    return "\n".join(lines) + "\n"


def _kind(key: str, hint: Any) -> str:
    if key in CHOICES:
        return "choice"
    if hint is pd.Timestamp:
        return "time"
    if typing.get_origin(hint) is tuple:
        return "pair"
    return {int: "int", float: "float", str: "str"}[hint]


def _text(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if isinstance(value, tuple):
        return ", ".join(_text(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def _parse(f: FormField, raw: str, source: str) -> Any:
    def number(text: str) -> Any:
        try:
            return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
        except ValueError:
            raise ConfigError(f"{source}: {f.key}: expected a number, got {text!r}") from None

    if f.kind == "pair":
        parts = [p.strip() for p in raw.strip("[]").split(",")]
        return [number(p) for p in parts]  # a wrong count is the config's own error
    if f.kind in ("int", "float"):
        return number(raw)
    return raw


def _toml(f: FormField) -> str:
    if f.kind == "pair":
        return "[" + f.value + "]"
    if f.kind == "time":
        return f.value  # a TOML offset date-time
    if f.kind in ("str", "choice"):
        return '"' + f.value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f.value


def _wrap(text: str, width: int = 86) -> list[str]:
    out, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return out + [line] if line else out
