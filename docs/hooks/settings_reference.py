"""The configuration reference, generated from the pydantic settings models so it cannot drift.

Walks `model_fields` recursively from one root model: each field's TOML key, type, default,
environment variables and description. Environment names come from the root model's
pydantic-settings config (`env_prefix`, `env_nested_delimiter`) when it has one, from field
aliases, and from a description that ends with "Environment: NAME[, NAME]." A field without a
description fails the build.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from cells import cell
from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo

# The one place that names the settings: change this import when the models move.
from vectorflow.settings import _SettingsFile as ROOT_MODEL

_ENV_SENTENCE = re.compile(r"\s*Environment:\s*([A-Z0-9_, ]+)\.\s*$")
_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


@dataclass(frozen=True)
class Section:
    """One TOML table of the settings file and the model of its keys."""

    name: str  # "" for the top level, "backtest.windows", "exchanges.<name>", ...
    model: type[BaseModel]
    description: str
    env_path: tuple[str, ...] | None  # env name parts of the section; None: no env names


def _model_of(annotation: Any) -> tuple[type[BaseModel], str] | None:
    """(model, how it nests: "table" | "dict" | "list") when a field holds settings models."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, "table"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is dict and args and _model_of(args[-1]):
        return args[-1], "dict"
    if origin is list and args and _model_of(args[0]):
        return args[0], "list"
    return None


def sections(model: type[BaseModel] = ROOT_MODEL, name: str = "", description: str = "",
             env_path: tuple[str, ...] | None = ()) -> Iterator[Section]:
    """The root model's section, then every nested one, depth first, in field order."""
    yield Section(name, model, description, env_path)
    for key, field in model.model_fields.items():
        nested = _model_of(field.annotation)
        if nested is None:
            continue
        child, how = nested
        label = f"{name}.{key}" if name else key
        child_env = None if env_path is None else (*env_path, key)
        if how == "dict":
            label = f"{label}.<name>"
            child_env = None if child_env is None else (*child_env, "<NAME>")
        elif how == "list":
            label, child_env = f"[{label}]", None
        yield from sections(child, label, _description(field, label), child_env)


def _description(field: FieldInfo, where: str) -> str:
    if not field.description:
        raise ValueError(f"settings field {where} has no description: add description=...")
    return field.description


def type_name(annotation: Any) -> str:
    """The TOML-side name of a field's type: "list of strings", "integer or none", ..."""
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    if annotation is type(None):
        return "none"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin is Literal:
        return " or ".join(f'`"{a}"`' if isinstance(a, str) else f"`{a}`" for a in args)
    if origin is list:
        return f"list of {_plural(type_name(args[0]))}"
    if origin is dict:
        return f"table of {_plural(type_name(args[-1]))}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    return getattr(annotation, "__name__", str(annotation))


def _plural(name: str) -> str:
    first, space, rest = name.partition(" ")
    return first + "s" + space + rest if first in _SCALARS.values() or rest[:2] == "of" else name


_BOUNDS = (
    (annotated_types.Ge, "ge", "≥"), (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "≤"), (annotated_types.Lt, "lt", "<"),
)  # fmt: skip


def constraints(field: FieldInfo) -> str:
    """The field's bounds as text: "≥ 1, ≤ 64", "at least 1 item"."""
    parts = []
    for item in field.metadata:
        for kind, attr, sign in _BOUNDS:
            if isinstance(item, kind):
                parts.append(f"{sign} {getattr(item, attr)}")
        if isinstance(item, annotated_types.MinLen) and item.min_length:
            parts.append(f"at least {item.min_length}")
        if isinstance(item, annotated_types.MaxLen):
            parts.append(f"at most {item.max_length} long")
    return ", ".join(parts)


def toml_value(value: Any) -> str:
    """A default as it would be written in the settings file."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def env_names(field: FieldInfo, key: str, env_path: tuple[str, ...] | None) -> list[str]:
    """Every environment variable that sets the field, the generated name first."""
    names = []
    config = ROOT_MODEL.model_config
    prefix, delimiter = config.get("env_prefix"), config.get("env_nested_delimiter")
    if prefix is not None and env_path is not None and (not env_path or delimiter):
        names.append((prefix + (delimiter or "").join((*env_path, key))).upper())
    alias = field.validation_alias or field.alias
    choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
    names += [c for c in choices if isinstance(c, str) and c.isupper()]
    stated = _ENV_SENTENCE.search(field.description or "")
    if stated:
        names += [n.strip() for n in stated[1].split(",") if n.strip()]
    return list(dict.fromkeys(names))


def section_table(section: Section) -> str:
    """The markdown table of one section's own keys (nested sections get their own table)."""
    lines = ["| key | type | default | environment | description |", "|---|---|---|---|---|"]
    for key, field in section.model.model_fields.items():
        if _model_of(field.annotation):
            continue
        where = f"{section.name}.{key}" if section.name else key
        description = _ENV_SENTENCE.sub("", _description(field, where))
        kind = type_name(field.annotation)
        bounds = constraints(field)
        if field.is_required():
            default = "required"
        else:
            default = f"`{toml_value(field.get_default(call_default_factory=True))}`"
        env = ", ".join(f"`{n}`" for n in env_names(field, key, section.env_path)) or "–"
        row = [f"`{key}`", kind + (f" ({bounds})" if bounds else ""), default, env, description]
        lines.append("| " + " | ".join(cell(c) for c in row) + " |")
    return "\n".join(lines)


def render(_argument: str | None = None) -> str:
    """Every section of the settings file: a heading, its description and its keys."""
    out = []
    for section in sections():
        title = "Top level" if not section.name else f"`[{section.name}]`"
        out += [f"### {title}", ""]
        if section.description:
            out += [section.description, ""]
        out += [section_table(section), ""]
    return "\n".join(out)
