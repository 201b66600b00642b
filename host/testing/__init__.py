"""Test helpers for Steppe projects (docs/testing.md): `MockContext` for unit tests of a handler, and
`HostTester` (with the pytest fixture factory `host_fixture`) for tests against a real host."""

from pathlib import Path

from .load import load_step
from .mock import HostError, MockContext, MockLogger, MockState, MockStreams
from .tester import HostTester, host_fixture

# the npm package `steppe-testing` (JS/TS helpers): `npm install <this folder>`
NPM_PACKAGE = Path(__file__).resolve().parent / "npm"
# the Ruby helpers (`require "steppe/testing"`): `ruby -I <this folder> ...`
RUBY_LIB = Path(__file__).resolve().parent / "ruby"

__all__ = ["NPM_PACKAGE", "RUBY_LIB", "HostError", "HostTester", "MockContext", "MockLogger", "MockState",
           "MockStreams", "host_fixture", "load_step"]
