"""ESM step files run as ES modules: a "type": "module" project (like Motia 0.17's playground) with
import.meta, top-level await and extensionless relative imports; .mts files; import.meta in a
CommonJS project's .ts step. Also: a GET with no body is not checked against bodySchema."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from conftest import REPO, RunningHost, wait_until, write_project

ZOD4 = REPO / "tests" / "compat" / "fixtures" / "zod4" / "node_modules"

pytestmark = pytest.mark.skipif(not (ZOD4 / "zod").is_dir(), reason="run ./scripts/setup-tests (zod 4 fixture)")

ESM_FILES = {
    "package.json": '{"name": "esm-app", "type": "module", "dependencies": {"zod": "^4.1.13"}}',
    "src/files/services/greeting.ts": """
        export type Greeting = { text: string }
        export const greet = (who: string): Greeting => ({ text: `hello ${who}` })
    """,
    "src/files/where.step.ts": """
        import path from 'node:path'
        import { readFile } from 'node:fs/promises'
        import type { ApiRouteConfig, Handlers } from 'motia'
        import { greet } from './services/greeting'

        const here = path.dirname(new URL(import.meta.url).pathname)
        const sample = await readFile(path.join(here, 'sample.txt'), 'utf8')

        export const config: ApiRouteConfig = {
          type: 'api', name: 'Where', method: 'GET', path: '/where', emits: [],
        }

        export const handler: Handlers['Where'] = async () => ({
          status: 200,
          body: { here, dirname: import.meta.dirname, filename: import.meta.filename, sample: sample.trim(),
                  greeting: greet('esm').text },
        })
    """,
    "src/files/sample.txt": "read at top level\n",
    "src/counter/tally.ts": """
        let count = 0
        export const bump = (): number => ++count
    """,
    "src/counter/first.step.ts": """
        import { bump } from './tally'
        export const config = { type: 'api', name: 'BumpFirst', method: 'POST', path: '/bump/first', emits: [] }
        export const handler = async () => ({ status: 200, body: { count: bump() } })
    """,
    "src/counter/second.step.ts": """
        import { bump } from './tally.js'
        export const config = { type: 'api', name: 'BumpSecond', method: 'POST', path: '/bump/second', emits: [] }
        export const handler = async () => ({ status: 200, body: { count: bump() } })
    """,
    "src/files/rb_like.step.ts": """
        import { z } from 'zod'

        export const config = {
          type: 'api', name: 'GetWithSchema', method: 'GET', path: '/get-with-schema', emits: [],
          bodySchema: z.object({ message: z.string() }),
        }

        export const handler = async (req: { body: unknown }) => ({ status: 200, body: { got: req.body ?? null } })
    """,
    "src/files/post_with_schema.step.ts": """
        import { z } from 'zod'

        export const config = {
          type: 'api', name: 'PostWithSchema', method: 'POST', path: '/post-with-schema', emits: [],
          bodySchema: z.object({ message: z.string() }),
        }

        export const handler = async () => ({ status: 200, body: { ok: true } })
    """,
    "src/files/download.step.ts": """
        import fs from 'fs/promises'
        import path from 'path'
        import type { ApiRouteConfig, Handlers } from 'motia'
        import { z } from 'zod'

        export const config: ApiRouteConfig = {
          type: 'api', name: 'Download', method: 'GET', path: '/files/sample.txt', emits: [], flows: ['files'],
          responseSchema: { 200: z.toJSONSchema(z.file()) },
        }

        export const handler: Handlers['Download'] = async () => ({
          status: 200,
          body: await fs.readFile(path.join(import.meta.dirname, 'sample.txt')),
          headers: { 'Content-Type': 'text/plain' },
        })
    """,
    "src/files/module.step.mts": """
        export const config = { type: 'api', name: 'Mts', method: 'GET', path: '/mts', emits: [] }
        export const handler = async () => ({ status: 200, body: { url: import.meta.url.split('?')[0] } })
    """,
}

# a folder whose nearest package.json says CommonJS, inside the "type": "module" project
CJS_FILES = {
    "src/legacy/package.json": '{"type": "commonjs"}',
    "src/legacy/meta.step.ts": """
        export const config = { type: 'api', name: 'CjsMeta', method: 'GET', path: '/meta', emits: [] }
        const loadedAt = await Promise.resolve(import.meta.url)
        export const handler = async () => ({ status: 200, body: { loadedAt: loadedAt.split('?')[0] } })
    """,
    "src/legacy/plain.step.ts": """
        export const config = { type: 'api', name: 'CjsPlain', method: 'GET', path: '/plain', emits: [] }
        export const handler = async () => ({ status: 200, body: { dirname: __dirname } })
    """,
}


@pytest.fixture(scope="module")
def esm_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    root = write_project(tmp_path_factory.mktemp("esm") / "esm-app", {**ESM_FILES, **CJS_FILES})
    (root / "node_modules").symlink_to(ZOD4)
    running = RunningHost(root, [], {"STEPPE_BUS": "memory", "STEPPE_STATE": "memory"}).wait_ready()
    yield running
    running.stop()


def test_type_module_ts_step_has_import_meta_top_level_await_and_extensionless_imports(esm_host: RunningHost) -> None:
    r = httpx.get(f"{esm_host.url}/where")
    assert r.status_code == 200, esm_host.logs()
    files = esm_host.root / "src" / "files"
    assert r.json() == {"here": str(files), "dirname": str(files), "filename": str(files / "where.step.ts"),
                        "sample": "read at top level", "greeting": "hello esm"}


def test_a_step_reading_a_file_beside_it_through_import_meta_dirname(esm_host: RunningHost) -> None:
    r = httpx.get(f"{esm_host.url}/files/sample.txt")
    assert r.status_code == 200, esm_host.logs()
    assert r.content == b"read at top level\n"
    assert r.headers["content-type"].startswith("text/plain")


def test_esm_steps_share_one_instance_of_a_helper_module(esm_host: RunningHost) -> None:
    counts = [httpx.post(f"{esm_host.url}/bump/{which}").json()["count"] for which in ("first", "second", "first")]
    assert counts == [1, 2, 3], esm_host.logs()


def test_mts_step_is_an_es_module(esm_host: RunningHost) -> None:
    r = httpx.get(f"{esm_host.url}/mts")
    assert r.status_code == 200, esm_host.logs()
    assert r.json()["url"] == (esm_host.root / "src" / "files" / "module.step.mts").as_uri()


def test_get_without_body_is_not_checked_against_body_schema(esm_host: RunningHost) -> None:
    r = httpx.get(f"{esm_host.url}/get-with-schema")
    assert r.status_code == 200, r.text
    assert r.json() == {"got": None}


def test_a_sent_body_and_a_post_are_still_checked(esm_host: RunningHost) -> None:
    sent = httpx.request("GET", f"{esm_host.url}/get-with-schema", json={"message": 5})
    assert sent.status_code == 400, sent.text
    assert httpx.post(f"{esm_host.url}/post-with-schema").status_code == 400
    assert httpx.post(f"{esm_host.url}/post-with-schema", json={"message": "hi"}).status_code == 200


def test_import_meta_and_top_level_await_make_a_commonjs_package_file_an_es_module(esm_host: RunningHost) -> None:
    meta = httpx.get(f"{esm_host.url}/meta")
    assert meta.status_code == 200, esm_host.logs()
    assert meta.json() == {"loadedAt": (esm_host.root / "src" / "legacy" / "meta.step.ts").as_uri()}


def test_a_commonjs_package_file_without_them_keeps_dirname(esm_host: RunningHost) -> None:
    plain = httpx.get(f"{esm_host.url}/plain")
    assert plain.json() == {"dirname": str(esm_host.root / "src" / "legacy")}, esm_host.logs()


def test_an_edited_esm_step_answers_with_its_new_code(esm_host: RunningHost) -> None:
    step = esm_host.root / "src" / "files" / "where.step.ts"
    before = httpx.get(f"{esm_host.url}/where").json()["greeting"]
    step.write_text(step.read_text().replace("greet('esm').text", "greet('edited').text"))

    def edited() -> bool:
        r = httpx.get(f"{esm_host.url}/where")
        return r.status_code == 200 and r.json()["greeting"] == "hello edited"

    wait_until(edited, 10, "the edited ESM step to answer")
    assert before == "hello esm"
    # the runner serves the new code as soon as it has loaded it, a moment before the host logs the reload
    esm_host.wait_log("reloaded src/files/where.step.ts")


def test_requests_during_an_esm_reload_keep_getting_answers(esm_host: RunningHost) -> None:
    """An ES module is imported asynchronously; the old version answers until the new one is ready."""
    step = esm_host.root / "src" / "files" / "module.step.mts"
    original = step.read_text()
    statuses: list[int] = []
    with httpx.Client(base_url=esm_host.url) as http:
        for n in range(3):
            edited = step.with_suffix(".tmp")  # written aside and renamed over the file, as editors save
            edited.write_text(original.replace("status: 200,", f"status: 200, headers: {{'x-n': '{n}'}},"))
            edited.replace(step)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                r = http.get("/mts")
                statuses.append(r.status_code)
                if r.headers.get("x-n") == str(n):
                    break
            assert r.headers.get("x-n") == str(n), esm_host.logs()
    assert set(statuses) == {200}, statuses
