"""Small pure pieces of the host: discovery rules, config checks, settings precedence, body parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_project
from steppe.discovery import discover, find_auth_file
from steppe.runners.registry import RunnerRegistry
from steppe.settings import load_settings
from steppe.steps import ConfigError, cron_is_valid, starlette_path, validate_config
from steppe.web.api import BodyError, parse_body


def test_discovery_follows_motia_naming(tmp_path: Path) -> None:
    names = ["a.step.ts", "b.step.js", "c.step.rb", "d_step.ts", "e_step.js", "f_step.py", "g_step.rb",
             "h.step.py", "s.stream.ts", "t_stream.py", "ui.step.tsx", "helper.ts", "notes.md"]
    write_project(tmp_path, {**{f"steps/x/{n}": "" for n in names}, "src/i_step.py": "",
                             "steps/node_modules/j_step.js": "", "steps/.hidden/k_step.py": "",
                             "other/l_step.py": ""})
    found = {(f.path.name, f.kind) for f in discover(tmp_path)}
    assert found == {("a.step.ts", "step"), ("b.step.js", "step"), ("c.step.rb", "step"), ("d_step.ts", "step"),
                     ("e_step.js", "step"), ("f_step.py", "step"), ("g_step.rb", "step"), ("h.step.py", "step"),
                     ("s.stream.ts", "stream"), ("t_stream.py", "stream"), ("i_step.py", "step")}
    write_project(tmp_path, {"steppe_auth.py": ""})
    assert find_auth_file(tmp_path, None) == tmp_path / "steppe_auth.py"


def test_extra_runner_extensions_are_discovered(tmp_path: Path) -> None:
    write_project(tmp_path, {"steps/a.step.lua": "", "steps/b.lua": ""})
    assert [f.path.name for f in discover(tmp_path, (".lua",))] == ["a.step.lua"]
    registry = RunnerRegistry(extra={"lua": {"command": ["lua", "runners/lua/runner.lua"], "extensions": [".lua"]}},
                              project_root=tmp_path)
    spec = registry.for_file(tmp_path / "steps/a.step.lua")
    assert spec and spec.language == "lua" and spec.command == ["lua", str(tmp_path / "runners/lua/runner.lua")]
    assert registry.for_file(tmp_path / "x_step.py").language == "python"  # type: ignore[union-attr]
    assert registry.for_file(tmp_path / "x.step.ts").language == "node"  # type: ignore[union-attr]


@pytest.mark.parametrize("config, error", [
    ({"type": "api", "name": "A", "path": "/a", "method": "GET"}, None),
    ({"type": "api", "name": "A", "path": "a", "method": "GET"}, "path"),
    ({"type": "api", "name": "A", "path": "/a", "method": "FETCH"}, "method"),
    ({"type": "event", "name": "E", "subscribes": []}, "subscribes"),
    ({"type": "cron", "name": "C", "cron": "*/5 * * * *"}, None),
    ({"type": "cron", "name": "C", "cron": "*/10 * * * * *"}, None),
    ({"type": "cron", "name": "C", "cron": "every minute"}, "cron"),
    ({"type": "noop", "name": "N", "virtualEmits": ["x"]}, None),
    ({"type": "job", "name": "J"}, "type"),
    ({"type": "api", "path": "/a", "method": "GET"}, "name"),
    ({"type": "noop", "name": "N", "emits": [{"label": "no topic"}]}, "emits"),
])
def test_config_validation(config: dict, error: str | None) -> None:
    if error is None:
        validate_config(config)
    else:
        with pytest.raises(ConfigError, match=error):
            validate_config(config)


def test_paths_and_cron() -> None:
    assert starlette_path("/users/:id/orders/:orderId") == "/users/{id}/orders/{orderId}"
    assert cron_is_valid("0 9 * * 1-5") and cron_is_valid("30 * * * * *") and not cron_is_valid("* * *")


def test_settings_precedence(tmp_path: Path) -> None:
    write_project(tmp_path, {"steppe.toml": "port = 4000\nstate = 'memory'\napi_timeout = 5\n"})
    s = load_settings(tmp_path, env={})
    assert (s.port, s.state, s.api_timeout) == (4000, "memory", 5)
    s = load_settings(tmp_path, env={"STEPPE_PORT": "4100", "STEPPE_API_TIMEOUT": "2.5"})
    assert (s.port, s.api_timeout) == (4100, 2.5)
    assert load_settings(tmp_path, env={"STEPPE_PORT": "4100"}, port=4200).port == 4200
    assert load_settings(tmp_path, env={}, mode="start").bind_address == "127.0.0.1"  # both modes: loopback
    assert load_settings(tmp_path, env={}).bind_address == "127.0.0.1"
    assert load_settings(tmp_path, env={}, mode="start", host="0.0.0.0").bind_address == "0.0.0.0"
    assert load_settings(tmp_path, env={"STEPPE_ALLOWED_HOSTS": "a.example, b.example"}).allowed_hosts == [
        "a.example", "b.example"]
    write_project(tmp_path, {"steppe.toml": "prot = 1\n"})
    with pytest.raises(ValueError, match="unknown settings prot"):
        load_settings(tmp_path, env={})


def test_body_parsing() -> None:
    assert parse_body(b'{"a": 1}', "application/json") == {"a": 1}
    assert parse_body(b"a=1&b=2&b=3", "application/x-www-form-urlencoded") == {"a": "1", "b": ["2", "3"]}
    assert parse_body(b"hello", "text/plain; charset=utf-8") == "hello"
    assert parse_body(b"", "application/json") is None
    assert parse_body(b"plain words", "") == "plain words"
    with pytest.raises(BodyError) as e:
        parse_body(b"{", "application/json")
    assert e.value.status == 400
