"""Steppe protocol kit: a stdlib-only host side of protocol v1 (client) and the conformance kit that plays
protocol/vectors against any runner (`python protocol/kit/conformance.py -- <runner command>`)."""

from .client import HostRefusal, RunnerClient, RunnerError

__all__ = ["HostRefusal", "RunnerClient", "RunnerError"]
