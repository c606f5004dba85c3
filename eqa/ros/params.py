"""A node's settings as ROS parameters: every leaf of its config dataclass (eqa.ros.config) is declared under its
dotted name with the dataclass default, then read back and checked by the dataclass (eqa.config.from_dict:
unknown keys, types, bounds)."""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Type, TypeVar

from eqa.config import from_dict
from eqa.ros.config import flatten, unflatten

T = TypeVar("T")


def list_fields(cls: type, prefix: str = "") -> dict[str, type]:
    """Dotted name -> element type (str, float, int) of the list fields of a config dataclass."""
    out = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.update(list_fields(tp, f"{prefix}{f.name}."))
        elif typing.get_origin(tp) is list:
            out[f"{prefix}{f.name}"] = typing.get_args(tp)[0]
    return out


def declare_config(node, cls: Type[T]) -> T:
    """Declare every setting of `cls` as a parameter of `node` (values from --params-file or overrides win over
    the defaults) and return the checked config; ValueError naming a bad value."""
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.exceptions import ParameterUninitializedException
    from rclpy.parameter import Parameter

    array_type = {str: Parameter.Type.STRING_ARRAY, float: Parameter.Type.DOUBLE_ARRAY,
                  int: Parameter.Type.INTEGER_ARRAY}
    lists = list_fields(cls)
    defaults = flatten(cls())
    values: dict[str, Any] = {}
    for name, default in defaults.items():
        doc = ParameterDescriptor(description=f"{cls.__name__}: {name}")
        if name in lists:  # typed, so that an empty default does not become a byte array
            node.declare_parameter(name, array_type[lists[name]], doc)
            try:
                value = node.get_parameter(name).value
            except ParameterUninitializedException:
                value = default
            values[name] = list(value) if value is not None else default
        else:
            values[name] = node.declare_parameter(name, default, doc).value
    return from_dict(cls, unflatten(values), cls.__name__)


def parameter_names(cls: type) -> set[str]:
    """The dotted parameter names a node with config `cls` declares."""
    return set(flatten(cls()))
