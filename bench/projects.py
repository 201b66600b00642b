"""The step files each scenario runs, written into temporary projects."""

from __future__ import annotations

# API round trip (S1–S3, S7): small JSON in, small JSON out; `v` marks the code's version for the reload test
API_ROUTES = {"python": "/py", "js": "/js", "ts": "/ts", "ruby": "/rb"}
API_FILES = {"python": "steps/hello_step.py", "js": "steps/hello.step.js", "ts": "steps/hello_ts.step.ts",
             "ruby": "steps/hello_step.rb"}


def api_step(lang: str, version: int = 0) -> str:
    return {
        "python": f'''
            config = {{"type": "api", "name": "HelloPy", "path": "/py", "method": "POST", "emits": []}}

            async def handler(req, context):
                return {{"status": 200, "body": {{"hello": req["body"]["name"], "v": {version}}}}}
        ''',
        "js": f'''
            exports.config = {{ type: 'api', name: 'HelloJs', path: '/js', method: 'POST', emits: [] }}
            exports.handler = async (req) => ({{ status: 200, body: {{ hello: req.body.name, v: {version} }} }})
        ''',
        "ts": f'''
            export const config = {{ type: 'api', name: 'HelloTs', path: '/ts', method: 'POST', emits: [] }}
            export const handler = async (req: {{ body: {{ name: string }} }}) =>
              ({{ status: 200, body: {{ hello: req.body.name, v: {version} }} }})
        ''',
        "ruby": f'''
            def config
              {{ type: 'api', name: 'HelloRb', path: '/rb', method: 'POST', emits: [] }}
            end

            def handler(req, context)
              {{ status: 200, body: {{ hello: req.body['name'], v: {version} }} }}
            end
        ''',
    }[lang]


def api_project() -> dict[str, str]:
    return {API_FILES[lang]: api_step(lang) for lang in API_FILES}


# Event throughput (S4, S8): a JS API step emits n events; one hop `tick` → Python; the chain
# `hop1` → Python relay → `hop2` → Ruby. Each counter reports distinct events and handler calls per run.
EVENT_PROJECT = {
    "steps/burst.step.js": """
        exports.config = { type: 'api', name: 'Burst', path: '/burst', method: 'POST', emits: ['tick', 'hop1'] }
        exports.handler = async (req, { emit }) => {
          const { n, run, topic } = req.body
          const batch = 200
          for (let i = 0; i < n; i += batch) {
            const emits = []
            for (let j = i; j < Math.min(n, i + batch); j++) emits.push(emit({ topic, data: { run, i: j } }))
            await Promise.all(emits)
          }
          return { status: 200, body: { emitted: n } }
        }
    """,
    "steps/tally.py": """
        seen: dict[str, set[int]] = {}
        handled: dict[str, int] = {}

        def count(data):
            seen.setdefault(data["run"], set()).add(data["i"])
            handled[data["run"]] = handled.get(data["run"], 0) + 1
    """,
    "steps/count_step.py": """
        from .tally import count

        config = {"type": "event", "name": "Count", "subscribes": ["tick"], "emits": [],
                  "infrastructure": {"queue": {"concurrency": 200}}}

        async def handler(data, context):
            count(data)
    """,
    "steps/relay_step.py": """
        config = {"type": "event", "name": "Relay", "subscribes": ["hop1"], "emits": ["hop2"],
                  "infrastructure": {"queue": {"concurrency": 200}}}

        async def handler(data, context):
            await context.emit({"topic": "hop2", "data": data})
    """,
    "steps/read_count_step.py": """
        from .tally import handled, seen

        config = {"type": "api", "name": "ReadCount", "path": "/count/:run", "method": "GET", "emits": []}

        async def handler(req, context):
            run = req["pathParams"]["run"]
            body = {"distinct": len(seen.get(run, ())), "handled": handled.get(run, 0)}
            if req["queryParams"].get("forget"):
                seen.pop(run, None)
                handled.pop(run, None)
            return {"status": 200, "body": body}
    """,
    "steps/tally_step.rb": """
        $bench_tally ||= { seen: Hash.new { |h, k| h[k] = {} }, handled: Hash.new(0), lock: Mutex.new }

        def config
          { type: 'event', name: 'Tally', subscribes: ['hop2'], emits: [],
            infrastructure: { queue: { concurrency: 200 } } }
        end

        def handler(data, context)
          t = $bench_tally
          t[:lock].synchronize do
            t[:seen][data['run']][data['i']] = true
            t[:handled][data['run']] += 1
          end
        end
    """,
    "steps/read_tally_step.rb": """
        $bench_tally ||= { seen: Hash.new { |h, k| h[k] = {} }, handled: Hash.new(0), lock: Mutex.new }

        def config
          { type: 'api', name: 'ReadTally', path: '/rbcount/:run', method: 'GET', emits: [] }
        end

        def handler(req, context)
          t = $bench_tally
          run = req['pathParams']['run']
          t[:lock].synchronize do
            body = { distinct: t[:seen].key?(run) ? t[:seen][run].size : 0, handled: t[:handled][run] }
            if req['queryParams']['forget']
              t[:seen].delete(run)
              t[:handled].delete(run)
            end
            { status: 200, body: body }
          end
        end
    """,
}

# Live heap after a full collection, per runner (S8's leak check: RSS alone cannot tell a leak from a heap
# the runtime keeps after it has grown, as V8 does)
HEAP_ROUTES = {"python": "/heap/py", "node": "/heap/js", "ruby": "/heap/rb"}
HEAP_PROJECT = {
    "steps/heap.step.js": """
        const v8 = require('v8')
        const vm = require('vm')
        v8.setFlagsFromString('--expose_gc')
        const gc = vm.runInNewContext('gc')
        exports.config = { type: 'api', name: 'HeapJs', path: '/heap/js', method: 'GET', emits: [] }
        exports.handler = async () => {
          gc()
          return { status: 200, body: { live: process.memoryUsage().heapUsed / 1048576, unit: 'MB heapUsed' } }
        }
    """,
    "steps/heap_step.py": """
        import gc

        config = {"type": "api", "name": "HeapPy", "path": "/heap/py", "method": "GET", "emits": []}

        async def handler(req, context):
            gc.collect()
            live = len(gc.get_objects()) + gc.get_freeze_count()  # a runner may gc.freeze() its start-up objects
            return {"status": 200, "body": {"live": live, "unit": "gc-tracked objects"}}
    """,
    "steps/heap_step.rb": """
        def config
          { type: 'api', name: 'HeapRb', path: '/heap/rb', method: 'GET', emits: [] }
        end

        def handler(req, context)
          GC.start
          counts = ObjectSpace.count_objects
          { status: 200, body: { live: counts[:TOTAL] - counts[:FREE], unit: 'live objects' } }
        end
    """,
}

# State (S6): an API step per language loops k times over state.set + state.get and answers the time the
# loop took, measured inside the handler.
STATE_ROUTES = {"python": "/state/py", "js": "/state/js", "ruby": "/state/rb"}
STATE_PROJECT = {
    "steps/state_step.py": """
        import time

        config = {"type": "api", "name": "StatePy", "path": "/state/py", "method": "POST", "emits": []}

        async def handler(req, context):
            k, state = req["body"]["k"], context.state
            started = time.perf_counter()
            for i in range(k):
                await state.set("bench", f"key{i % 64}", {"i": i})
                await state.get("bench", f"key{i % 64}")
            return {"status": 200, "body": {"seconds": time.perf_counter() - started, "calls": 2 * k}}
    """,
    "steps/state.step.js": """
        exports.config = { type: 'api', name: 'StateJs', path: '/state/js', method: 'POST', emits: [] }
        exports.handler = async (req, { state }) => {
          const k = req.body.k
          const started = performance.now()
          for (let i = 0; i < k; i++) {
            await state.set('bench', `key${i % 64}`, { i })
            await state.get('bench', `key${i % 64}`)
          }
          return { status: 200, body: { seconds: (performance.now() - started) / 1000, calls: 2 * k } }
        }
    """,
    "steps/state_step.rb": """
        def config
          { type: 'api', name: 'StateRb', path: '/state/rb', method: 'POST', emits: [] }
        end

        def handler(req, context)
          k = req.body['k']
          started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
          k.times do |i|
            context.state.set('bench', "key#{i % 64}", { i: i })
            context.state.get('bench', "key#{i % 64}")
          end
          { status: 200, body: { seconds: Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, calls: 2 * k } }
        end
    """,
}
