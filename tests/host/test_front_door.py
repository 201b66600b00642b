"""The front door (host/web/front.py) picks, for every request it takes, the step endpoint Starlette's router
would have picked: the first route in the router's order matching path and method, with the same path
parameters; it leaves to the router what an earlier route outside /__steppe/ takes, and everything else."""

from __future__ import annotations

import itertools
from pathlib import Path

from starlette.responses import PlainTextResponse
from starlette.routing import Match, Mount, Route

from steppe.steps import Step, starlette_path
from steppe.web.front import StepTable
from steppe.web.step_endpoint import StepEndpoint

# (method, path) in the router's order: exact and parameter paths interleaved, one shadowed by an earlier route
SPECS = [("GET", "/items/:id"), ("GET", "/items/special"), ("POST", "/items/special"), ("GET", "/users/me"),
         ("GET", "/users/:id"), ("DELETE", "/users/:id"), ("PUT", "/a/:x/b/:y"), ("GET", "/"),
         ("GET", "/openapi.json"), ("POST", "/café")]
PATHS = ["/items/1", "/items/special", "/users/me", "/users/42", "/a/1/b/2", "/a/1/b/", "/", "/openapi.json",
         "/café", "/items/special/", "/nope", "/users/me\n"]
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]


def step_routes() -> list[Route]:
    routes = []
    for i, (method, path) in enumerate(SPECS):
        step = Step(Path(f"/p/steps/s{i}.step.js"), "node", {"type": "api", "name": f"S{i}", "path": path,
                                                            "method": method})
        endpoint = StepEndpoint(step, None, None, max_body=1000, timeout=1.0, expose_errors=False)  # type: ignore[arg-type]
        routes.append(Route(starlette_path(path), endpoint, methods=[method], name=step.name))
    return routes


def front_routes() -> list:
    def page(request):  # noqa: ANN001, ANN202
        return PlainTextResponse("front")

    return [Route("/openapi.json", page), Mount("/__steppe/api", routes=[]), Route("/", page)]


def router_pick(routes: list, method: str, path: str) -> tuple | None:
    """What Starlette's router serves: the first route matching fully, in order."""
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.FULL:
            return route.endpoint, child.get("path_params", {})
    return None


def test_the_front_door_picks_what_the_router_would():
    front, steps = front_routes(), step_routes()
    table = StepTable(front, steps)
    for method, path in itertools.product(METHODS, PATHS):
        scope = {"type": "http", "method": method, "path": path}
        expected = router_pick([*front, *steps], method, path)
        found = table.find(method, path)
        if found is not None and not table.shadowed(scope):  # taken by the front door: the router's pick
            assert expected == found, (method, path)
        elif expected is not None and isinstance(expected[0], StepEndpoint):
            # left to the router, which serves this step itself: only Starlette's `$` (a trailing newline)
            assert path.endswith("\n"), (method, path)
    # the earlier routes keep their paths: `/` and `/openapi.json` stay the router's, /__steppe/ never is a step's
    assert table.shadowed({"type": "http", "method": "GET", "path": "/"})
    assert table.shadowed({"type": "http", "method": "GET", "path": "/openapi.json"})
    assert table.find("HEAD", "/users/me") == router_pick(steps, "HEAD", "/users/me")  # HEAD wherever GET


def test_the_table_never_matches_in_the_router():
    table = StepTable([], step_routes())
    assert table.matches({"type": "http", "method": "GET", "path": "/users/me"})[0] is Match.NONE
