"""Errors users are expected to meet: each carries a message that says what to do next."""

from __future__ import annotations


class LisearchError(Exception):
    """An expected failure with a one-paragraph message for the user (no stack trace is shown).

    Build the message so that it names the bad value and says what to change or run.
    """

    exit_code = 2


class ConfigError(LisearchError):
    """A configuration file, profile or override is wrong."""


class EnvironmentProblem(LisearchError):
    """Java, the Delta Lake jars or a folder lisearch needs is missing or unusable."""


class InputError(LisearchError):
    """User input (a formula, a file, a table name, a model artifact) cannot be used."""
