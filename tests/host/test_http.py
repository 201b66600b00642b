"""What an API handler receives and how its answer is sent, through a real host and the Node runner."""

from __future__ import annotations

import httpx

from conftest import write_project

ECHO = """
    export const config = { type: 'api', name: 'Echo', path: '/echo/:kind/:id', method: 'POST', emits: [] }
    export const handler = async (req) => ({ status: 201, headers: { 'x-echo': 'yes' }, body: req })
"""
SHAPES = """
    export const config = { type: 'api', name: 'Shapes', path: '/shape/:as', method: 'GET', emits: [] }
    export const handler = async (req) => {
      const as = req.pathParams.as
      if (as === 'text') return { status: 200, body: 'plain words' }
      if (as === 'html') return { status: 200, headers: { 'content-type': 'text/html' }, body: '<b>hi</b>' }
      if (as === 'bytes') return { status: 200, body: Buffer.from([0, 1, 2, 255]) }
      if (as === 'empty') return { status: 204 }
      return { status: 200, body: [1, 'two', null] }
    }
"""


def test_request_shape(tmp_path, start_host):
    host = start_host(write_project(tmp_path, {"steps/echo.step.js": ECHO, "steps/shapes.step.js": SHAPES}))
    r = httpx.post(f"{host.url}/echo/user/42?q=1&tag=a&tag=b", json={"x": [1, 2]}, headers={"X-Custom": "Yes"})
    assert r.status_code == 201 and r.headers["x-echo"] == "yes" and r.headers["x-trace-id"]
    req = r.json()
    assert req["body"] == {"x": [1, 2]} and req["rawBody"] == '{"x":[1,2]}'
    assert req["pathParams"] == {"kind": "user", "id": "42"}
    assert req["queryParams"] == {"q": "1", "tag": ["a", "b"]}
    assert req["headers"]["x-custom"] == "Yes" and "content-type" in req["headers"]
    form = httpx.post(f"{host.url}/echo/f/1", data={"a": "1", "b": "two words"}).json()
    assert form["body"] == {"a": "1", "b": "two words"}
    text = httpx.post(f"{host.url}/echo/t/1", content=b"hello", headers={"content-type": "text/plain"}).json()
    assert text["body"] == "hello"
    empty = httpx.post(f"{host.url}/echo/e/1").json()
    assert empty["body"] is None and empty["rawBody"] == ""


def test_response_shapes(tmp_path, start_host):
    host = start_host(write_project(tmp_path, {"steps/shapes.step.js": SHAPES}))
    r = httpx.get(f"{host.url}/shape/text")
    assert r.text == "plain words" and r.headers["content-type"].startswith("text/plain")
    r = httpx.get(f"{host.url}/shape/html")
    assert r.text == "<b>hi</b>" and r.headers["content-type"] == "text/html"
    r = httpx.get(f"{host.url}/shape/bytes")
    assert r.content == bytes([0, 1, 2, 255]) and r.headers["content-type"] == "application/octet-stream"
    r = httpx.get(f"{host.url}/shape/empty")
    assert r.status_code == 204 and r.content == b""
    r = httpx.get(f"{host.url}/shape/json")
    assert r.json() == [1, "two", None] and r.headers["content-type"] == "application/json"


BASE64_STEPS = {
    "steps/b64.step.js": """
        export const config = { type: 'api', name: 'B64Js', path: '/b64/js', method: 'GET', emits: [] }
        export const handler = async () => ({ status: 200, bodyBase64: 'AAEC/w==' })
    """,
    "steps/b64_step.py": """
        config = {"type": "api", "name": "B64Py", "path": "/b64/py", "method": "GET", "emits": []}

        async def handler(req, ctx):
            return {"status": 200, "bodyBase64": "AAEC/w==", "headers": {"content-type": "image/png"}}
    """,
    "steps/b64_step.rb": """
        def config
          { type: 'api', name: 'B64Rb', path: '/b64/rb', method: 'GET', emits: [] }
        end

        def handler(_req, _ctx)
          { status: 200, bodyBase64: 'AAEC/w==' }
        end
    """,
    "steps/b64_bad_step.py": """
        config = {"type": "api", "name": "B64Bad", "path": "/b64/bad", "method": "GET", "emits": []}

        async def handler(req, ctx):
            return {"status": 200, "bodyBase64": "not base64!"}
    """,
}


def test_a_body_given_as_base64_is_sent_as_its_bytes_in_every_language(tmp_path, start_host):
    """Seen: `{status: 200, bodyBase64: '...'}` (a documented response key) was sent as an empty body by Node
    and as `null` by Python and Ruby."""
    host = start_host(write_project(tmp_path, BASE64_STEPS))
    for lang, media in (("js", "application/octet-stream"), ("py", "image/png"), ("rb", "application/octet-stream")):
        r = httpx.get(f"{host.url}/b64/{lang}")
        assert (r.status_code, r.content, r.headers["content-type"]) == (200, bytes([0, 1, 2, 255]), media), lang
    bad = httpx.get(f"{host.url}/b64/bad")
    assert bad.status_code == 500 and bad.json()["traceId"]
    host.wait_log("bodyBase64")


STATUS_TEXT_STEPS = {
    "steps/st.step.js": """
        export const config = { type: 'api', name: 'StJs', path: '/st/js', method: 'GET', emits: [] }
        export const handler = async () => ({ status: '201', body: 'made' })
    """,
    "steps/st_step.py": """
        config = {"type": "api", "name": "StPy", "path": "/st/py", "method": "GET", "emits": []}

        async def handler(req, ctx):
            return {"status": "201", "body": "made"}
    """,
    "steps/st_step.rb": """
        def config
          { type: 'api', name: 'StRb', path: '/st/rb', method: 'GET', emits: [] }
        end

        def handler(_req, _ctx)
          { status: '201', body: 'made' }
        end
    """,
}


def test_a_status_written_as_digits_means_the_same_in_every_language(tmp_path, start_host):
    """Seen: `{status: '201', body: 'made'}` answered 201 from JS and Ruby, but 500 'the response status must be
    an int' from Python: the host decides what a status may be, for every runner alike."""
    host = start_host(write_project(tmp_path, STATUS_TEXT_STEPS))
    for lang in ("js", "py", "rb"):
        r = httpx.get(f"{host.url}/st/{lang}")
        assert (r.status_code, r.text) == (201, "made"), (lang, r.text)
