"""HTTP answers a Motia project relies on: a wrong method on a known path is 405 with `Allow` (Motia said
404), a step's route keeps answering its own method, and bracket names in the query and in form bodies nest
as Express's default parser (qs) made them."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from conftest import RunningHost, write_project

FILES = {
    "steps/items.step.ts": """
        import { ApiRouteConfig, Handlers } from 'motia'

        export const config: ApiRouteConfig = {
          type: 'api', name: 'ListItems', method: 'GET', path: '/items/:kind', emits: [], flows: ['items'],
        }
        export const handler: Handlers['ListItems'] = async (req) => ({
          status: 200, body: { kind: req.pathParams.kind, items: [] },
        })
    """,
    "steps/search.step.ts": """
        import { ApiRouteConfig, Handlers } from 'motia'

        export const config: ApiRouteConfig = {
          type: 'api', name: 'Search', method: 'POST', path: '/search', emits: [], flows: ['items'],
        }
        export const handler: Handlers['Search'] = async (req) => ({
          status: 200, body: { status: req.queryParams.filter?.status ?? null, query: req.queryParams, form: req.body },
        })
    """,
    "steps/add_item_step.py": """
        config = {"type": "api", "name": "AddItem", "method": "PUT", "path": "/items/:kind", "emits": []}


        async def handler(req, context):
            return {"status": 201, "body": {"added": req["pathParams"]["kind"]}}
    """,
}


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    root = write_project(tmp_path_factory.mktemp("http") / "app", FILES)
    running = RunningHost(root, [], {"STEPPE_BUS": "memory", "STEPPE_STATE": "memory"}).wait_ready()
    yield running
    running.stop()


def test_each_method_reaches_its_step(host: RunningHost) -> None:
    assert httpx.get(f"{host.url}/items/books").json() == {"kind": "books", "items": []}
    put = httpx.put(f"{host.url}/items/books")
    assert (put.status_code, put.json()) == (201, {"added": "books"})


def test_wrong_method_on_a_known_path_is_405(host: RunningHost) -> None:
    r = httpx.post(f"{host.url}/items/books", json={})
    assert r.status_code == 405, r.text
    assert httpx.get(f"{host.url}/nowhere").status_code == 404


def test_405_names_the_allowed_methods(host: RunningHost) -> None:
    r = httpx.delete(f"{host.url}/items/books")
    assert r.status_code == 405, r.text
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "PUT"}


def test_bracket_names_nest_as_express_read_them(host: RunningHost) -> None:
    """Seen: `?filter[status]=open` reached the handler as {"filter[status]": "open"}, so a Motia handler's
    `req.queryParams.filter.status` threw (TypeError) and the request failed with 500."""
    query = "filter[status]=open&filter[kind]=bug&tag[]=a&tag[]=b&page[0]=x&page[1]=y&plain=1&plain=2"
    r = httpx.post(f"{host.url}/search?{query}", content="order[id]=7&order[lines][0][sku]=s1&order[lines][0][n]=2",
                   headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "status": "open",
        "query": {"filter": {"status": "open", "kind": "bug"}, "tag": ["a", "b"], "page": ["x", "y"],
                  "plain": ["1", "2"]},
        "form": {"order": {"id": "7", "lines": [{"sku": "s1", "n": "2"}]}},
    }
