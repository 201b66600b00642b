"""Steppe: a polyglot step framework host."""

__version__ = "0.1.0"
