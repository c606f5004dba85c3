"""Typed dataclass configs loaded from YAML with `key.sub=value` command-line overrides, and the typed
conversion between dataclasses and plain dicts that episode records use too.

A dataclass with a `sections: dict` field and a static `section_class(name)` (e.g. `VLMConfig`) takes extra
keys that name a section (`hf: {...}`): each becomes sections[name], built as section_class(name). A dataclass
with a static `expand_config(data) -> data` (e.g. `sim.config.CameraConfig`: presets) has its dict expanded first.
"""
from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import types
import typing
from pathlib import Path
from typing import Any, Callable, Type, TypeVar

import yaml

T = TypeVar("T")


def config_dir() -> Path:
    """The shipped configs: the repository's `configs/`, installed as the package data of `eqa.configs` (pip,
    colcon; editable installs map it to the source folder). Run from a source tree that is not installed
    (PYTHONPATH=.), the folder next to `eqa/`."""
    try:
        return Path(importlib.import_module("eqa.configs").__file__).parent
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "configs"


def find_config(name: str) -> Path:
    """A config path: an existing file, or a name in the shipped configs (with or without .yaml)."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = config_dir()
    for candidate in (shipped / name, shipped / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"config {name!r} not found (looked in the working directory and {shipped})")


def from_dict(cls: Type[T], data: dict | None, where: str = "") -> T:
    """Build dataclass `cls` from a nested dict, checking keys and converting scalar types."""
    data = data or {}
    if not isinstance(data, dict):
        raise ValueError(f"config section {where or cls.__name__!r} must be a mapping, got {type(data).__name__}")
    expand = getattr(cls, "expand_config", None)  # e.g. a preset's values under the keys given
    if expand is not None:
        try:
            data = expand(data)
        except ValueError as err:
            raise ValueError(f"config {where}: {err}" if where else str(err)) from None
    converters = _field_converters(cls)
    section_class = getattr(cls, "section_class", None)
    kwargs, sections = {}, {}
    for key, value in data.items():
        here = f"{where}.{key}" if where else str(key)
        if key in converters:
            kwargs[key] = converters[key](value, here)
        elif section_class is not None and section_class(key) is not None:
            sections[key] = from_dict(section_class(key), value, here)
        else:
            raise ValueError(f"unknown config key {key!r} in {where or cls.__name__}; known: {sorted(converters)}")
    if sections:
        kwargs["sections"] = {**kwargs.get("sections", {}), **sections}
    try:
        return cls(**kwargs)
    except ValueError as err:
        raise ValueError(f"config {where}: {err}" if where else str(err)) from None


@functools.lru_cache(maxsize=None)
def _field_converters(cls: type) -> dict[str, Callable[[Any, str], Any]]:
    """Per field of dataclass `cls`: the function converting a plain value to the field's type."""
    hints = typing.get_type_hints(cls)
    return {f.name: _converter(hints[f.name]) for f in dataclasses.fields(cls)}


@functools.lru_cache(maxsize=None)
def _converter(tp: Any) -> Callable[[Any, str], Any]:
    """(value, where) -> value as type `tp` (dataclasses, Optional, lists, tuples, dicts, enums, bool, int, float,
    str; anything else as given); ValueError naming `where` when it does not fit."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return lambda value, where: value if isinstance(value, tp) else from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1:
            return lambda value, where: value
        inner = _converter(args[0])
        return lambda value, where: None if value is None else inner(value, where)
    if origin in (list, tuple):
        args = typing.get_args(tp)
        inner = _converter(args[0]) if args else (lambda value, where: value)

        def sequence(value, where):
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"config {where} must be a list, got {value!r}")
            items = [inner(v, where) for v in value]
            return tuple(items) if origin is tuple else items
        return sequence
    if origin is dict:
        args = typing.get_args(tp)
        inner = _converter(args[1]) if args else (lambda value, where: value)

        def mapping(value, where):
            if not isinstance(value, dict):
                raise ValueError(f"config {where} must be a mapping, got {value!r}")
            return {k: inner(v, f"{where}.{k}") for k, v in value.items()}
        return mapping
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        def member(value, where):
            try:
                return tp(value)
            except ValueError:
                raise ValueError(f"config {where} must be one of {[m.value for m in tp]}, got {value!r}") from None
        return member
    if tp is bool:
        def boolean(value, where):
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise ValueError(f"config {where} must be a boolean, got {value!r}")
        return boolean
    if tp in (int, float, str):
        def scalar(value, where):
            if type(value) is tp:
                return value
            try:
                if tp is int and isinstance(value, float) and not value.is_integer():
                    raise ValueError
                return tp(value)
            except (TypeError, ValueError):
                raise ValueError(f"config {where} must be {tp.__name__}, got {value!r}") from None
        return scalar
    return lambda value, where: value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `a.b.c=value` overrides (value parsed as YAML) to a nested dict, in place."""
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        value = parse_yaml(raw, f"override {item!r}")
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a section")
        node[parts[-1]] = value
    return data


def load_yaml(path: str | Path | None = None, overrides: list[str] | None = None) -> dict:
    """The dict of a YAML config (a path or a shipped config name; {} when None) with overrides applied."""
    data: dict = {}
    if path is not None:
        found = find_config(str(path))
        data = parse_yaml(found.read_bytes(), str(found)) or {}
        if not isinstance(data, dict):
            raise ValueError(f"config {found}: the top level must be a mapping")
    return apply_overrides(data, list(overrides or []))


def parse_yaml(text: bytes | str, where: str) -> Any:
    """yaml.safe_load of `text`; ValueError naming `where` and the line for text that is not UTF-8 or not YAML."""
    try:
        return yaml.safe_load(text.decode("utf-8") if isinstance(text, bytes) else text)
    except UnicodeDecodeError:
        raise ValueError(f"{where}: not UTF-8 text") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(f"{where}{line}: YAML syntax error: {problem}") from None


def load_config(cls: Type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Load dataclass `cls` from a YAML file (or defaults when None), then apply overrides."""
    return from_dict(cls, load_yaml(path, overrides))


def to_dict(config: Any) -> Any:
    """Plain nested dict of a dataclass (for records, JSON and YAML): enums become their values, tuples lists,
    and `sections` are written back as keys of their own (the inverse of from_dict)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        out = {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
        if hasattr(config, "section_class") and isinstance(out.get("sections"), dict):
            out.update(out.pop("sections"))
        return out
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, enum.Enum):
        return config.value
    return config
