"""The protocol conformance kit (protocol/kit) against the three real runners, and against a deliberately
wrong runner to show that the kit does catch what it claims to."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO, need

sys.path.insert(0, str(REPO))

from protocol.kit.loader import FIXTURES_DIR, Fixtures, guess_language, load_vectors  # noqa: E402
from protocol.kit.matcher import Scope, match  # noqa: E402
from protocol.kit.schemas import SCHEMAS_DIR  # noqa: E402

KIT = REPO / "protocol" / "kit" / "conformance.py"
LANGUAGES = ["python", "node", "ruby"]


def run_kit(command: list[str], tmp_path: Path, *options: str) -> tuple[int, list[dict], str]:
    report = tmp_path / "outcomes.json"
    proc = subprocess.run([sys.executable, str(KIT), "--json", str(report), *options, "--", *command],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    outcomes = json.loads(report.read_text()) if report.exists() else []
    return proc.returncode, outcomes, proc.stdout + proc.stderr


def runner_command(lang: str) -> list[str]:
    if lang == "python":
        return [sys.executable, "runners/python/runner.py"]
    if lang == "node":
        return [need("node"), "runners/node/runner.js"]
    return [need("ruby"), "runners/ruby/runner.rb"]


# every runner speaks protocol 1.1 (fds), and 1.0 (stdio) still works: one stdio run shows it
@pytest.mark.parametrize("lang, transport", [("python", "fds"), ("node", "fds"), ("ruby", "fds"),
                                             ("python", "stdio")])
def test_runner_passes_every_vector(lang: str, transport: str, tmp_path: Path) -> None:
    code, outcomes, output = run_kit(runner_command(lang), tmp_path, "--lang", lang, "--transport", transport)
    assert outcomes, f"the kit produced no outcomes:\n{output}"
    failed = [o for o in outcomes if not o["ok"]]
    report = "\n".join(f"- {o['name']}: {o['detail']}" + "".join(f"\n    stderr| {line}" for line in
                                                               o["stderr"].splitlines()[-5:]) for o in failed)
    assert not failed, f"{lang} runner fails {len(failed)} of {len(outcomes)} vector(s):\n{report}"
    assert code == 0 and len(outcomes) == len(load_vectors())


WRONG_RUNNER = """
    import json, sys
    print("starting up...", flush=True)  # a stray line on stdout: forbidden
    for line in sys.stdin:
        msg = json.loads(line)
        if "id" not in msg or "method" not in msg:
            continue
        if msg["method"] == "initialize":  # no pid, wrong language
            result = {"protocolVersion": 1, "language": "cobol", "runnerVersion": "0.1.0"}
        elif msg["method"] == "load":  # pretends every file loads, configs empty
            result = {"config": {}, "handler": True, "middleware": 0, "canAccess": False}
        else:
            result = None
        print(json.dumps({"jsonrpc": "2.0", "id": msg["id"], "result": result}), flush=True)
        if msg["method"] == "shutdown":
            sys.exit(3)
"""


def test_kit_catches_a_wrong_runner(tmp_path: Path) -> None:
    script = tmp_path / "wrong_runner.py"
    script.write_text(textwrap.dedent(WRONG_RUNNER))
    code, outcomes, output = run_kit([sys.executable, str(script)], tmp_path, "--lang", "python")
    assert code == 1, output
    by_name = {o["name"]: o for o in outcomes}
    assert all(not o["ok"] for o in outcomes), "every vector should see the stray stdout line"
    assert all("non-protocol line" in o["detail"] for o in outcomes)
    handshake = by_name["handshake"]["detail"]
    assert "language: expected \"python\", got \"cobol\"" in handshake and "unexpected keys" not in handshake
    assert "'pid' is a required property" in handshake  # the schema check
    assert "result: missing pid" in handshake  # the vector's own expectation
    assert "expected an error" in by_name["load_error"]["detail"]
    assert "exit status 3, expected 0" in by_name["shutdown"]["detail"]
    assert "no log notification matches" in by_name["stdout_capture"]["detail"]
    assert "host calls: expected ['state.get', 'state.set', 'emit']" in by_name["invoke_event"]["detail"]
    assert f"0 passed, {len(outcomes)} failed" in output


def test_a_runner_kept_beside_its_fixtures_passes_the_stack_vectors(tmp_path: Path) -> None:
    """The kit takes the runner script's folder for runner frames; a runner kept in its fixture folder
    must not have its fixtures' frames taken for its own."""
    fixtures = tmp_path / "lua"
    shutil.copytree(FIXTURES_DIR / "python", fixtures)
    runner = fixtures / "runner.py"
    real = str(REPO / "runners" / "python" / "runner.py")
    runner.write_text(f"import runpy\nrunpy.run_path({real!r}, run_name='__main__')\n")
    for vector in ("load_error", "invoke_authenticate", "handler_error", "unserialisable_emit"):
        code, outcomes, output = run_kit([sys.executable, str(runner)], tmp_path, "--lang", "python",
                                         "--fixtures", str(fixtures), "--transport", "fds", "--only", vector)
        assert code == 0 and outcomes and all(o["ok"] for o in outcomes), output


def test_stack_matcher_rejects_runner_frames() -> None:
    fixtures = Fixtures(FIXTURES_DIR / "python")
    scope = Scope("python", fixtures, ["/opt/runners/python/"])
    handler_frame = f'  File "{fixtures["reject"].path}", line 16, in check_order\n'
    assert match({"$stack": "reject"}, handler_frame, scope) == []
    runner_frame = '  File "/opt/runners/python/steppe_runner/invoke.py", line 3, in run\n'
    assert any("runner frames" in p for p in match({"$stack": "reject"}, runner_frame + handler_frame, scope))
    assert any("does not name" in p for p in match({"$stack": "reject"}, "", scope))


def test_every_language_has_every_fixture_the_vectors_name() -> None:
    sets = {lang: set(Fixtures(FIXTURES_DIR / lang).by_name) for lang in LANGUAGES}
    assert sets["python"] == sets["node"] == sets["ruby"], sets

    def named(value: object) -> set[str]:
        if isinstance(value, dict):
            own = {value["$fixture"]} if set(value) == {"$fixture"} else set()
            return own.union(*(named(v) for v in value.values()))
        if isinstance(value, list):
            return set().union(*(named(v) for v in value))
        return set()

    used = set().union(*(named(v) | set(v.get("load", [])) for v in load_vectors()))
    assert used <= sets["python"], used - sets["python"]


def test_schemas_are_valid_draft_2020_12() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    for path in SCHEMAS_DIR.glob("*.json"):
        jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


@pytest.mark.parametrize("argv, lang", [
    (["node", "runners/node/runner.js"], "node"), ([".venv/bin/python3.11", "r.py"], "python"),
    (["ruby", "runner.rb"], "ruby"), (["/usr/bin/env", "bun", "x.ts"], "node"), (["./runner"], None)])
def test_language_is_guessed_from_the_command(argv: list[str], lang: str | None) -> None:
    assert guess_language(argv) == lang
