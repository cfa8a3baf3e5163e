"""The generic config machinery under ``csp_tf.configs``: a tree of dataclasses as plain data.

``ConfigNode`` gives a config dataclass ``to_dict``/``from_dict`` for itself and everything
nested in it (unknown keys raise ``ConfigError`` naming the dotted key); ``OneOfNode`` is a
section that holds one of several option dataclasses. The helpers here flatten a dict to dotted
keys, walk a dotted override key down the tree and coerce YAML/CLI values to each field's
default type. Nothing here knows a particular config but ``REMOVED_KEYS`` (skipped on load in
every section): the position encoder's OneOf lives in ``csp_tf.encoder_options``, the stage
configs in ``csp_tf.configs``.
"""

from __future__ import annotations

import abc
import copy
import dataclasses
from typing import Any, Dict, Mapping, Optional


class ConfigError(ValueError):
    """A config value is invalid; the message names the field and the value."""


# Dotted keys that no longer exist -> why: ``from_dict`` skips them (an old saved config still
# loads: the field never had an effect) and ``ExperimentConfig.override`` names the reason.
REMOVED_KEYS = {"finetune.eval_frequency": "it was never read: the experiment protocol's "
                                           "--eval-every sets the evaluation period"}


class ConfigNode:
    """``to_dict``/``from_dict`` of a config dataclass and of everything nested in it."""

    def to_dict(self) -> Dict[str, Any]:
        return {f.name: _to_plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], prefix: str = ""):
        _mapping(d, prefix)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for key, value in d.items():
            if prefix + key in REMOVED_KEYS:
                continue  # an old saved config: the field never had an effect
            if key not in fields:
                raise ConfigError(f"unknown config key {prefix + key!r}")
            node = _node_type(fields[key])
            kwargs[key] = (node.from_dict(value, prefix + key + ".") if node
                           else _coerce(prefix + key, value, _default(fields[key])))
        return cls(**kwargs)


class OneOfNode(abc.ABC):
    """A section that holds one of several option dataclasses (the Model Garden OneOf): it
    (de)serialises itself and says how a dotted override reaches its options."""

    @abc.abstractmethod
    def to_dict(self) -> Dict[str, Any]: ...

    @classmethod
    @abc.abstractmethod
    def from_dict(cls, d: Mapping[str, Any], prefix: str = "") -> "OneOfNode": ...

    @abc.abstractmethod
    def _override_child(self, part: str, path: str, key: str) -> Optional[Any]:
        """The nested section ``part``; None where there is no such section."""

    @abc.abstractmethod
    def _override_assign(self, name: str, value: Any, key: str) -> None:
        """Sets the option ``name``."""


def _flatten(d: Mapping[str, Any], prefix: str = "") -> Dict[str, Any]:
    out = {}
    for key, value in d.items():
        out.update(_flatten(value, f"{prefix}{key}.") if isinstance(value, Mapping)
                   else {prefix + key: value})
    return out


def _mapping(d: Any, prefix: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise ConfigError(f"config section {prefix or '<root>'!r} must be a mapping, got {d!r}")
    return d


# ----- (de)serialisation helpers --------------------------------------------------------------
def _to_plain(value: Any) -> Any:
    if isinstance(value, (ConfigNode, OneOfNode)):
        return value.to_dict()
    return copy.deepcopy(value)


def _node_type(f: dataclasses.Field) -> Optional[type]:
    """The config class of a nested section, None for a plain value."""
    factory = f.default_factory
    if isinstance(factory, type) and issubclass(factory, (ConfigNode, OneOfNode)):
        return factory
    return None


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def _child(node: Any, part: str, path: str, key: str) -> Any:
    """The nested section ``part`` of ``node`` for an override ``key``."""
    if isinstance(node, OneOfNode):
        child = node._override_child(part, path, key)
        if child is not None:
            return child
    elif dataclasses.is_dataclass(node) and part in {f.name for f in dataclasses.fields(node)}:
        child = getattr(node, part)
        if isinstance(child, (ConfigNode, OneOfNode)):
            return child
    raise ConfigError(f"unknown config key {key!r}")


def _assign(node: Any, name: str, value: Any, key: str) -> None:
    if isinstance(node, OneOfNode):
        node._override_assign(name, value, key)
        return
    fields = {f.name: f for f in dataclasses.fields(node)}
    if name not in fields or _node_type(fields[name]):
        raise ConfigError(f"unknown config key {key!r}")
    setattr(node, name, _coerce(key, value, _default(fields[name])))


_BOOLS = {**dict.fromkeys(("true", "t", "1", "yes", "on"), True),
          **dict.fromkeys(("false", "f", "0", "no", "off"), False)}


def _coerce(name: str, value: Any, default: Any) -> Any:
    """YAML/CLI values arrive as strings or ints; coerce them to the field's default type."""
    if default is None or value is None:
        return value
    try:
        if isinstance(default, bool):
            return _BOOLS[value.lower()] if isinstance(value, str) else bool(value)
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str):  # YAML reads a bare on/off as a boolean
            return ("on" if value else "off") if isinstance(value, bool) else str(value)
        if isinstance(default, list):
            if not isinstance(value, (list, tuple)) or len(value) != len(default):
                raise ValueError
            return [float(v) for v in value]
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} should be a {type(default).__name__}"
                          + (f" of {len(default)} numbers" if isinstance(default, list) else "")) from None
    return value
