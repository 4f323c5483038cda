"""Exceptions raised by the core.

Every error carries a message fit for a one-line log entry: the plugin prints
``str(exc)`` as it is, prefixed with the file name where one applies.
"""

from __future__ import annotations


class McbrError(Exception):
    """Base class for all beets-mcbr errors."""


class ConfigError(McbrError):
    """A setting has an invalid value or an unknown key."""


class PluginError(McbrError):
    """A hook implementation is missing, duplicated or misbehaving."""


class DecodeError(McbrError):
    """An audio file cannot be decoded (unreadable, no audio stream, empty)."""


class ModelError(McbrError):
    """A model file is missing, malformed, or does not match the features."""


class IndexMismatchError(McbrError):
    """An index or store was built with a different model, dimension or metric."""
