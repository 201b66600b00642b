"""`backend` is the default of state, streams and bus; a part set on its own (toml, env or flag) wins."""

from __future__ import annotations

from pathlib import Path

from conftest import write_project
from steppe.settings import load_settings


def test_backend_is_the_default_of_each_part(tmp_path: Path) -> None:
    s = load_settings(tmp_path, env={})
    assert (s.state, s.streams, s.bus, s.uses_redis) == ("sqlite", "sqlite", "sqlite", False)
    s = load_settings(tmp_path, env={"STEPPE_BACKEND": "redis", "STEPPE_REDIS_PREFIX": "app1:"})
    assert (s.state, s.streams, s.bus, s.redis_prefix, s.uses_redis) == ("redis", "redis", "redis", "app1:", True)
    write_project(tmp_path, {"steppe.toml": 'backend = "redis"\nstate = "sqlite"\nredis_lease = 5\n'})
    s = load_settings(tmp_path, env={})
    assert (s.state, s.streams, s.bus, s.redis_lease) == ("sqlite", "redis", "redis", 5)
    s = load_settings(tmp_path, env={"STEPPE_BUS": "memory"})
    assert (s.state, s.streams, s.bus) == ("sqlite", "redis", "memory")
    assert load_settings(tmp_path, env={"STEPPE_BACKEND": "sqlite"}).streams == "sqlite"  # env over toml


def test_the_settings_block_of_docs_scaling_loads_as_written(tmp_path: Path) -> None:
    from conftest import REPO

    text = (REPO / "docs" / "scaling.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    write_project(tmp_path, {"steppe.toml": block})
    s = load_settings(tmp_path, env={})
    assert (s.state, s.streams, s.bus) == ("redis", "redis", "redis")
    assert (s.redis_url, s.redis_prefix, s.redis_lease) == ("redis://10.0.0.5:6379/0", "steppe:", 30)
