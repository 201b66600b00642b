"""`steppe generate types` on a project using every schema shape (JSON schema from Python, zod 4 and zod 3
from TypeScript): types.d.ts compiles under `tsc --strict` and steppe_types.py passes `mypy --strict`, and the
deliberate mistakes in the checks are errors (nothing is `any`). `steppe generate openapi` too."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, need

HERE = Path(__file__).parent
ZOD_MODULES = REPO / "examples" / "polyglot-hello" / "node_modules"
ZOD3_MODULES = REPO / "tests" / "compat" / "fixtures" / "zod3" / "node_modules"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("typed")
    shutil.copytree(HERE / "typed", project, dirs_exist_ok=True)
    (project / "node_modules").symlink_to(ZOD_MODULES)
    (project / "steps" / "legacy" / "node_modules").symlink_to(ZOD3_MODULES)  # zod 3 for steps/legacy only
    out = project / "out"
    done = subprocess.run([sys.executable, "-m", "steppe.cli", "generate", "types", "--root", str(project),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "warning" not in done.stderr, done.stdout + done.stderr
    return out


def test_every_shape_gets_a_type(generated: Path) -> None:
    ts = (generated / "types.d.ts").read_text()
    assert "any" not in ts.replace("Any", "").split() and "never" not in ts
    for expected in ('kind: "circle" | "square"', "ratio?: number | null", "scores?: Record<string, number>",
                     "point?: [number, number]", 'mode?: "fast"', "label: string | null",
                     "either: string | number", "ApiResponse<202, {", "items: Stream<{",
                     'legacyKind: "draft" | "final"', "legacyNote?: string | null",
                     "legacyCounts: Record<string, number>"):  # the last three from zod 3
        assert expected in ts, expected
    py = (generated / "steppe_types.py").read_text()
    assert '"kind": Literal["circle", "square"]' in py and '"ratio": NotRequired[float | None]' in py


def test_typescript_declarations_compile_with_tsc(generated: Path, tmp_path: Path) -> None:
    npm = need("npm")
    shutil.copy(HERE / "typed_checks" / "package.json", tmp_path / "package.json")
    installed = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=240)
    assert installed.returncode == 0, installed.stderr
    shutil.copy(generated / "types.d.ts", tmp_path / "types.d.ts")
    shutil.copy(HERE / "typed_checks" / "check.ts", tmp_path / "check.ts")
    tsc = subprocess.run([str(tmp_path / "node_modules" / ".bin" / "tsc"), "--noEmit", "--strict", "--target",
                          "es2022", "--module", "nodenext", "--moduleResolution", "nodenext", "check.ts"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert tsc.returncode == 0, tsc.stdout + tsc.stderr


def test_python_stubs_pass_mypy(generated: Path, tmp_path: Path) -> None:
    shutil.copy(generated / "steppe_types.py", tmp_path / "steppe_types.py")
    shutil.copy(HERE / "typed_checks" / "check_types.py", tmp_path / "check_types.py")
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--warn-unused-ignores", "--no-incremental",
                           "check_types.py", "steppe_types.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr


def test_generate_openapi(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(HERE / "typed", project)
    (project / "node_modules").symlink_to(ZOD_MODULES)
    done = subprocess.run([sys.executable, "-m", "steppe.cli", "generate", "openapi", "--root", str(project)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    op = doc["paths"]["/shapes"]["post"]
    assert op["operationId"] == "SubmitShape"
    assert op["requestBody"]["content"]["application/json"]["schema"]["properties"]["kind"]["enum"] == ["circle",
                                                                                                      "square"]


def test_dev_regenerates_the_types_after_a_change(tmp_path: Path) -> None:
    from conftest import RunningHost

    step = ("exports.config = { type: 'event', name: 'Grow', subscribes: ['grow'], emits: [],\n"
            "  input: { type: 'object', properties: { %s: { type: 'string' } }, required: ['%s'] } }\n"
            "exports.handler = async () => {}\n")
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "grow.step.js").write_text(step % ("first", "first"))
    done = subprocess.run([sys.executable, "-m", "steppe.cli", "generate", "types", "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "first: string" in (tmp_path / "types.d.ts").read_text()
    host = RunningHost(tmp_path, [], None).wait_ready()
    try:
        (tmp_path / "steps" / "grow.step.js").write_text(step % ("second", "second"))
        # both files are written before the line that says so
        host.wait_log("regenerated types.d.ts and steppe_types.py", timeout=20)
        assert "second: string" in (tmp_path / "types.d.ts").read_text()
        assert '"second": str' in (tmp_path / "steppe_types.py").read_text()
    finally:
        host.stop()


def test_types_on_a_full_disk_fail_loudly_and_leave_no_partial_copy() -> None:
    from tmpfs import fill, small_tmpfs

    from steppe.typegen.files import write_types
    from steppe.typegen.model import ProjectTypes

    with small_tmpfs("1m") as disk:
        filler = fill(disk)
        with pytest.raises(OSError):
            write_types(disk, ProjectTypes(steps=[], topics={}, streams={}))
        assert sorted(p.name for p in disk.iterdir()) == [filler.name]


def generate_types(project: Path, out: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "steppe.cli", "generate", "types", "--root", str(project),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_python_stubs_keep_their_own_names_and_float_enums(tmp_path: Path) -> None:
    """Seen: a topic named `any` generated `AnyEvent = TypedDict(...)`, which redefined the prelude's AnyEvent
    (mypy: no-redef) and made every step with `emits: []` able to emit topic "any" only; an enum of floats kept
    only its whole numbers (`{"enum": [1.5, -2, 1e20]}` became `Literal[-2]`); a stream named `state-x` was left
    out of `Streams` (no attribute can have its name), so `ctx.streams["state-x"]` had no type."""
    project = tmp_path / "app"
    (project / "steps").mkdir(parents=True)
    (project / "steps" / "any_step.py").write_text(
        'config = {"type": "event", "name": "OnAny", "subscribes": ["any"], "emits": [], "input": {"type": "object",'
        ' "properties": {"ratio": {"enum": [1.5, -2, 1e20]}}, "required": ["ratio"]}}\n'
        "async def handler(data, ctx):\n    pass\n")
    (project / "steps" / "state_x_stream.py").write_text(
        'config = {"name": "state-x", "schema": {"type": "object", "properties": {"n": {"type": "integer"}},'
        ' "required": ["n"]}}\n')
    (project / "steps" / "free_step.py").write_text(
        'config = {"type": "api", "name": "Free", "path": "/free", "method": "GET", "emits": []}\n'
        "async def handler(req, ctx):\n    return {'status': 200}\n")
    out = tmp_path / "out"
    generate_types(project, out)
    py = (out / "steppe_types.py").read_text()
    assert "class AnyEvent(TypedDict):" in py and "AnyEvent = " not in py
    assert "FreeContext = Context[AnyEvent]" in py and '"ratio": Literal[-2] | float' in py
    (out / "check_any.py").write_text(
        "from steppe_types import AnyData, FreeContext\n\n"
        "async def check(ctx: FreeContext) -> None:\n"
        "    await ctx.emit({'topic': 'anything.at.all', 'data': 1})\n\n"
        "ok: AnyData = {'ratio': 1.5}\n\n"
        "async def streams(ctx: FreeContext) -> int:\n"
        "    item = await ctx.streams['state-x'].get('g', 'i')\n"
        "    return item['n'] if item else 0\n")
    mypy = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "check_any.py",
                           "steppe_types.py"], cwd=out, capture_output=True, text=True, timeout=180)
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr


def test_a_topic_with_several_subscribers_takes_data_every_one_accepts(tmp_path: Path) -> None:
    """Seen: SubA (input {a: string}) and SubB (input {b: number}) subscribed to one topic; the types kept SubA's
    schema alone, so an emit of {a: 'x'} type-checked and SubB refused it, and {a: 'x', b: 1} did not type-check.
    Also: a Python allOf kept only its first member."""
    project = tmp_path / "app"
    (project / "steps").mkdir(parents=True)
    for name, prop, kind in (("SubA", "a", "string"), ("SubB", "b", "number")):
        (project / "steps" / f"{name.lower()}_step.py").write_text(
            f'config = {{"type": "event", "name": "{name}", "subscribes": ["shared.topic"], "emits": [], "input": '
            f'{{"type": "object", "properties": {{"{prop}": {{"type": "{kind}"}}}}, "required": ["{prop}"]}}}}\n'
            "async def handler(data, ctx):\n    pass\n")
    (project / "steps" / "both_step.py").write_text(
        'config = {"type": "api", "name": "Both", "path": "/both", "method": "POST", "emits": ["shared.topic"], '
        '"bodySchema": {"allOf": [{"type": "object", "properties": {"p": {"type": "string"}}, "required": ["p"]}, '
        '{"type": "object", "properties": {"q": {"type": "integer"}}}]}}\n'
        "async def handler(req, ctx):\n    return {'status': 200}\n")
    out = tmp_path / "out"
    generate_types(project, out)
    (out / "check_both.py").write_text(
        "from steppe_types import BothContext, BothInput\n\n"
        "async def check(ctx: BothContext) -> None:\n"
        "    await ctx.emit({'topic': 'shared.topic', 'data': {'a': 'x', 'b': 1}})\n"
        "    await ctx.emit({'topic': 'shared.topic', 'data': {'a': 'x'}})  # type: ignore[typeddict-item]\n\n"
        "body: BothInput = {'p': 'x', 'q': 1}\n")
    mypy = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--warn-unused-ignores", "--no-incremental",
                           "check_both.py", "steppe_types.py"], cwd=out, capture_output=True, text=True, timeout=180)
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr
    ts = (out / "types.d.ts").read_text()
    assert "a: string" in ts and "b: number" in ts, ts
