"""S7: cold start (spawning `steppe start` to the first 200 of an API step, with Python, Node and Ruby
runners) vs raw Starlette on uvicorn; and in dev mode, time from rewriting a step file to its new code
answering."""

from __future__ import annotations

import compileall
import shutil
import time
from pathlib import Path

import steppe
from steppe.runners.registry import RUNNERS_DIR

from ..loadgen import answer, poll
from ..procs import Host, Server, raw_starlette, write_files
from ..projects import API_FILES, API_ROUTES, api_project, api_step
from ..stats import Row, median
from . import Config

LANG_NAMES = {"python": "Python", "js": "JS", "ts": "TS", "ruby": "Ruby"}


def until_200(server: Server, path: str, timeout: float = 60) -> float:
    """Seconds from spawning the server until `path` answers 200."""
    while time.perf_counter() - server.started < timeout:
        got = answer(server.port, path)
        if got is not None and got[0] == 200:
            return time.perf_counter() - server.started
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}:\n{server.tail()}")
        time.sleep(0.005)
    raise RuntimeError(f"{path} did not answer 200 within {timeout}s:\n{server.tail()}")


def compile_steppe() -> None:
    """Byte-code for Steppe's own modules (the host package and the Python runner), as installing the wheel
    writes it: the baseline's Starlette and uvicorn run from site-packages, compiled when pip installed them.
    Without this, a source checkout under PYTHONDONTWRITEBYTECODE (set on this machine) compiles every Steppe
    module on every start: ~50 ms of the host's CPU and ~15 ms of the Python runner's, ~45 ms of spawn → first
    200 (same-run A/B)."""
    for folder in (Path(steppe.__file__).parent, RUNNERS_DIR / "python"):
        compileall.compile_dir(folder, quiet=1)


def cold_starts(cfg: Config, work: Path) -> list[Row]:
    root = write_files(work / "cold", api_project())
    compile_steppe()
    raw_times: list[float] = []
    steppe_times: list[float] = []
    all_steps: list[float] = []
    for r in range(cfg.cold_runs):
        for which in (("raw", "steppe") if r % 2 == 0 else ("steppe", "raw")):
            if which == "raw":
                with raw_starlette(work) as raw:
                    raw_times.append(until_200(raw, "/hello"))
                continue
            with Host(root) as host:  # fresh data dir each time
                steppe_times.append(until_200(host, API_ROUTES["python"]))
                for path in API_ROUTES.values():
                    until_200(host, path)
                all_steps.append(time.perf_counter() - host.started)
    row = Row("S7", "cold start: spawn `steppe start` → first 200 (Python, Node, Ruby runners)", "s",
              steppe_times, "raw Starlette, uvicorn: spawn → first 200", raw_times, higher_is_better=False,
              extra={"all four API steps answered, s": median(all_steps)},
              note="project: four API steps (Python, JS, TS, Ruby), fresh .steppe/ each start; Steppe's modules "
              "byte-compiled first, as an installed wheel's are; polled every 5 ms")
    # issue 13: a ratio to raw uvicorn's own start (the old "< 1.0 s" differed 2–3× between machines)
    return [row.check("≤ 2× raw uvicorn's spawn → first 200", lambda m, ratio, x: ratio <= 2.0)]


def reloads(cfg: Config, work: Path) -> list[Row]:
    root = work / "reload"
    shutil.rmtree(root, ignore_errors=True)
    write_files(root, api_project())
    times: dict[str, list[float]] = {lang: [] for lang in API_FILES}
    missed: dict[str, int] = {lang: 0 for lang in API_FILES}
    version = 0
    with Host(root, mode="dev") as host:
        host.ready()
        time.sleep(0.5)  # let the file watcher settle; not part of any measurement
        for _ in range(cfg.runs):
            for lang in API_FILES:
                version += 1
                marker = f'"v":{version}'.encode()
                write_files(root, {API_FILES[lang]: api_step(lang, version)})

                def new_code_answers(lang: str = lang, marker: bytes = marker) -> bool:
                    got = answer(host.port, API_ROUTES[lang])
                    return got is not None and got[0] == 200 and marker in got[1]

                took = poll(new_code_answers, cfg.reload_timeout)
                if took is None:
                    missed[lang] += 1
                else:
                    times[lang].append(took)
            if not any(times.values()):
                break  # nothing reloads at all: do not wait out every timeout
    rows = []
    for lang, name in LANG_NAMES.items():
        row = Row("S7", f"dev reload: {name} step file rewritten → new code answers", "s", times[lang],
                  higher_is_better=False, extra={"edits not picked up": missed[lang]},
                  note=f"`steppe dev`; polled every 5 ms, given up after {cfg.reload_timeout:g} s")
        if not any(times.values()):
            row.note = (f"not implemented: `steppe dev` did not serve the edited code within "
                        f"{cfg.reload_timeout:g} s")
        rows.append(row.check("< 0.5 s, every edit picked up",
                              lambda m, ratio, x: m < 0.5 and x["edits not picked up"] == 0))
    return rows


def run(cfg: Config, work: Path) -> list[Row]:
    return cold_starts(cfg, work) + reloads(cfg, work)
