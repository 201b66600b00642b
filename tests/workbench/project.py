"""The project the Workbench tests run against: every step type, a stream, virtual edges, a failing step
(for dead letters), a broken step (for the red node), across Python and JavaScript."""

from __future__ import annotations

from pathlib import Path

from conftest import write_project

FILES = {
    "steps/place_order.step.js": """
        export const config = {
          type: 'api', name: 'PlaceOrder', path: '/orders', method: 'POST', flows: ['shop'],
          emits: ['order.placed'], virtualEmits: [{ topic: 'order.audited', label: 'audit' }],
          bodySchema: { type: 'object', required: ['item', 'qty'],
                        properties: { item: { type: 'string' }, qty: { type: 'integer', minimum: 1 } } },
        }
        export const handler = async (req, { emit, logger, traceId }) => {
          logger.info('order received', { item: req.body.item })
          await emit({ topic: 'order.placed', data: { item: req.body.item, qty: req.body.qty } })
          return { status: 201, body: { traceId } }
        }
    """,
    "steps/store_order_step.py": """
        config = {"type": "event", "name": "StoreOrder", "subscribes": ["order.placed"], "emits": [],
                  "flows": ["shop"], "streams": ["orders"]}

        async def handler(input, context):
            await context.state.set("orders", input["item"], input)
            await context.streams.orders.set("all", input["item"], input)
            context.logger.info("order stored", {"item": input["item"]})
    """,
    "steps/audit_step.py": """
        config = {"type": "noop", "name": "Audit", "virtualSubscribes": ["order.audited"], "flows": ["shop"]}
    """,
    "steps/read_state_step.py": """
        config = {"type": "api", "name": "ReadState", "path": "/state/:group/:key", "method": "GET", "emits": []}

        async def handler(req, context):
            value = await context.state.get(req["pathParams"]["group"], req["pathParams"]["key"])
            return {"status": 200, "body": {"value": value}}
    """,
    "steps/fail_step.py": """
        config = {"type": "api", "name": "Fail", "path": "/fail", "method": "GET", "emits": []}

        async def handler(req, context):
            raise ValueError("out of stock")
    """,
    "steps/charge_step.py": """
        import pathlib
        config = {"type": "event", "name": "Charge", "subscribes": ["payment.requested"], "emits": [],
                  "flows": ["shop"], "infrastructure": {"queue": {"maxRetries": 2}}}

        async def handler(input, context):
            if not pathlib.Path(__file__).with_name("charge.ok").exists():
                raise RuntimeError("card declined")
            context.logger.info("charged", {"amount": input["amount"]})
    """,
    "steps/nightly_step.py": """
        config = {"type": "cron", "name": "Nightly", "cron": "0 3 * * *", "emits": [], "flows": ["ops"]}

        async def handler(context):
            await context.state.set("nightly", "ran", True)
            context.logger.info("nightly ran")
    """,
    "steps/broken.step.js": """
        export const config = { type: 'api', name: 'Broken', path: '/broken', method: 'GET' }
        throw new Error('broken on purpose')
    """,
    "steps/orders.stream.js": """
        export const config = { name: 'orders', schema: { type: 'object' }, baseConfig: { storageType: 'default' } }
    """,
}


def make_project(root: Path) -> Path:
    return write_project(root, FILES)
