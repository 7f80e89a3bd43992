"""The configuration reference, generated from the pydantic settings models so it cannot drift.

Walks `model_fields` recursively from one root model: each field's TOML key, type, default,
environment variables and description. Environment names are those the settings loader reads:
its prefix and nesting delimiter (`VECTORFLOW_` and `__`, e.g. `VECTORFLOW_RESILIENCE__TIME_SCALE`)
and its short aliases (`VECTORFLOW_TIME_SCALE`). A field without a description fails the build.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from cells import cell
from pydantic import BaseModel
from pydantic.fields import FieldInfo

# The one place that names the settings: change this import when the models move.
from vectorflow.settings import ENV_ALIASES, ENV_NESTED_DELIMITER, ENV_PREFIX
from vectorflow.settings import SettingsKeys as ROOT_MODEL

_ANY_NAME = "<NAME>"  # a table key the user chooses (exchanges.<name>)
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
            child_env = None if child_env is None else (*child_env, _ANY_NAME)
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
    if origin is Annotated:  # PositiveInt, NonNegativeFloat...: the bounds are not shown here
        return type_name(args[0])
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in args)
    if origin is Literal:
        return " or ".join(f'`"{a}"`' if isinstance(a, str) else f"`{a}`" for a in args)
    if origin in (list, tuple):
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


def env_names(key: str, env_path: tuple[str, ...] | None) -> list[str]:
    """Every environment variable that sets the field, the generated name first, then the
    loader's short aliases."""
    if env_path is None:
        return []
    path = (*env_path, key)
    names = [(ENV_PREFIX + ENV_NESTED_DELIMITER.join(path)).upper()]
    names += [alias for alias, target in ENV_ALIASES.items() if _same_key(target, path)]
    return names


def _same_key(target: tuple[str, ...], path: tuple[str, ...]) -> bool:
    """Whether an alias's key path is `path` (`<NAME>` in `path` matching any table key)."""
    same_length = len(target) == len(path)
    return same_length and all(p in (t, _ANY_NAME) for t, p in zip(target, path, strict=False))


def section_table(section: Section) -> str:
    """The markdown table of one section's own keys (nested sections get their own table)."""
    lines = ["| key | type | default | environment | description |", "|---|---|---|---|---|"]
    for key, field in section.model.model_fields.items():
        if _model_of(field.annotation):
            continue
        where = f"{section.name}.{key}" if section.name else key
        description = _description(field, where)
        kind = type_name(field.annotation)
        bounds = constraints(field)
        if field.is_required():
            default = "required"
        else:
            default = f"`{toml_value(field.get_default(call_default_factory=True))}`"
        env = ", ".join(f"`{n}`" for n in env_names(key, section.env_path)) or "–"
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
