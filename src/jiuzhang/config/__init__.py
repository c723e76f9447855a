"""Typed configuration: one frozen section type per params section, validated on load."""

from jiuzhang.config.errors import ConfigError
from jiuzhang.config.loader import load_params, read_yaml, validate_params
from jiuzhang.config.root import Params

__all__ = ["ConfigError", "Params", "load_params", "read_yaml", "validate_params"]
