"""Motia's CLI conventions: `.env` / `.env.local` at the project root, and `python_modules/` (Motia's
per-project virtualenv) as the interpreter of Python steps, named at start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import RunningHost, write_project
from steppe.envfiles import load_env_files, read_env_files
from steppe.settings import load_settings

STEP = """
    import os
    import sys

    from only_in_python_modules import WHERE

    config = {"type": "api", "name": "Env", "method": "GET", "path": "/env", "emits": []}

    async def handler(req, context):
        names = ["FROM_DOTENV", "FROM_LOCAL", "OVERRIDDEN", "EXPORTED"]
        return {"status": 200, "body": {"env": {n: os.environ.get(n) for n in names}, "prefix": sys.prefix,
                                          "where": WHERE}}
"""


def make_venv(path: Path) -> None:
    # the runner needs only the standard library, so a venv without pip is enough (and fast)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)


def test_env_files_and_python_modules_reach_python_steps(tmp_path: Path) -> None:
    root = write_project(tmp_path / "app", {
        "steps/env_step.py": STEP,
        ".env": "FROM_DOTENV=dotenv\nOVERRIDDEN=from .env\nEXPORTED=from .env\nSTEPPE_API_TIMEOUT=7\n",
        ".env.local": "FROM_LOCAL=local\nOVERRIDDEN=from .env.local\n",
    })
    make_venv(root / "python_modules")
    # a package installed only in python_modules/ (the playground's `openai`, say) is importable by steps
    site = next((root / "python_modules" / "lib").glob("python3*")) / "site-packages"
    (site / "only_in_python_modules.py").write_text("WHERE = 'python_modules'\n")
    make_venv(root / ".venv")  # python_modules/ comes first, as in Motia
    running = RunningHost(root, [], {"EXPORTED": "from the shell", "STEPPE_BUS": "memory"}).wait_ready()
    try:
        r = httpx.get(f"{running.url}/env")
        assert r.status_code == 200, running.logs()
        assert r.json()["env"] == {"FROM_DOTENV": "dotenv", "FROM_LOCAL": "local", "OVERRIDDEN": "from .env.local",
                                   "EXPORTED": "from the shell"}
        assert Path(r.json()["prefix"]) == root / "python_modules"
        assert r.json()["where"] == "python_modules"
        assert f"python steps run with {root / 'python_modules' / 'bin' / 'python'} (the project's python_modules/)" \
            in running.logs()
    finally:
        running.stop()


def test_explicit_python_setting_wins_over_project_virtualenvs(tmp_path: Path) -> None:
    (tmp_path / "python_modules" / "bin").mkdir(parents=True)
    (tmp_path / "python_modules" / "bin" / "python").write_text("")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").write_text("")
    assert load_settings(tmp_path, env={}).python_choice() == (
        str(tmp_path / "python_modules" / "bin" / "python"), "the project's python_modules/")
    (tmp_path / "python_modules" / "bin" / "python").unlink()
    assert load_settings(tmp_path, env={}).python_executable() == str(tmp_path / ".venv" / "bin" / "python")
    explicit = load_settings(tmp_path, env={"STEPPE_PYTHON": "/opt/py"})
    assert explicit.python_choice() == ("/opt/py", "the python setting")
    (tmp_path / "steppe.toml").write_text('python = "/opt/toml-py"\n')
    assert load_settings(tmp_path, env={}).python_executable() == "/opt/toml-py"


def test_env_file_precedence_and_steppe_settings(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=env\nB=env\nSTEPPE_PORT=4100\nQUOTED=\"two words\"\nREF=${A}-x\n")
    (tmp_path / ".env.local").write_text("B=local\n")
    (tmp_path / "steppe.toml").write_text("port = 4000\n")
    assert read_env_files(tmp_path) == {"A": "env", "B": "local", "STEPPE_PORT": "4100", "QUOTED": "two words",
                                        "REF": "env-x"}
    environ = {"A": "real"}
    assert load_env_files(tmp_path, environ) == [".env", ".env.local"]
    assert environ["A"] == "real" and environ["B"] == "local"
    # a STEPPE_* line in .env is environment, so it wins over steppe.toml like an exported variable
    assert load_settings(tmp_path, env=environ).port == 4100


def test_a_reference_takes_the_value_its_variable_ends_up_with(tmp_path: Path, monkeypatch) -> None:
    """Seen: with `A=from-env` and `C=${A}-ref` in .env and A=real exported, handlers saw A=real but
    C=from-env-ref."""
    (tmp_path / ".env").write_text("A=from-env\nB=env\nC=${A}-ref\nD=${B}-ref\n")
    (tmp_path / ".env.local").write_text("B=local\nE=${B}+${A}\n")
    monkeypatch.setenv("A", "real")
    values = read_env_files(tmp_path)
    assert (values["C"], values["E"]) == ("real-ref", "local+real")
    assert values["D"] == "env-ref"  # read in order: B was still .env's value when D was read


def test_no_env_files_changes_nothing(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    assert load_env_files(tmp_path, environ) == []
    assert environ == {}


@pytest.mark.parametrize("line", ["=novalue", "JUST_A_NAME"])
def test_odd_env_lines_do_not_stop_the_host(tmp_path: Path, line: str) -> None:
    (tmp_path / ".env").write_text(f"{line}\nGOOD=1\n")
    assert read_env_files(tmp_path)["GOOD"] == "1"
