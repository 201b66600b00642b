"""A Motia 0.x scaffold-style project runs unchanged: TS API (zod) → Python (relative imports, Pydantic) → JS."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from conftest import REPO, write_project

ZOD = REPO / "examples" / "polyglot-hello" / "node_modules"


def scaffold(tmp_path: Path) -> Path:
    root = write_project(tmp_path / "my-motia-app", {
        "package.json": '{"name": "my-motia-app", "dependencies": {"zod": "^4.1.0", "motia": "0.17.0"}}',
        "steps/petstore/api.step.ts": """
            import { ApiRouteConfig, Handlers } from 'motia'
            import { z } from 'zod'
            import { petStoreService } from './services/pet-store'

            const petSchema = z.object({ id: z.number(), name: z.string(), photoUrl: z.string() })

            export const config: ApiRouteConfig = {
              type: 'api',
              name: 'ApiTrigger',
              description: 'basic-tutorial api trigger',
              flows: ['basic-tutorial'],
              method: 'POST',
              path: '/basic-tutorial',
              bodySchema: z.object({
                pet: z.object({ name: z.string(), photoUrl: z.string() }),
                foodOrder: z.object({ id: z.string(), quantity: z.number() }).optional(),
              }),
              responseSchema: { 200: petSchema },
              emits: ['process-food-order'],
            }

            export const handler: Handlers['ApiTrigger'] = async (req, { logger, traceId, emit }) => {
              logger.info('Step 01 – Processing API Step', { body: req.body })
              const { pet, foodOrder } = req.body
              const newPetRecord = await petStoreService.createPet(pet)
              if (foodOrder) {
                await emit({ topic: 'process-food-order', data: { id: foodOrder.id, quantity: foodOrder.quantity,
                  email: 'test@test.com', petId: newPetRecord.id } })
              }
              return { status: 200, body: { ...newPetRecord, traceId } }
            }
        """,
        "steps/petstore/services/pet-store.ts": """
            export type Pet = { id: number; name: string; photoUrl: string }
            let next = 1
            export const petStoreService = {
              createPet: async (pet: Omit<Pet, 'id'>): Promise<Pet> => ({ id: next++, ...pet }),
            }
        """,
        "steps/petstore/process_food_order_step.py": """
            from pydantic import BaseModel
            from .services.orders import create_order

            class InputSchema(BaseModel):
                id: str
                email: str
                quantity: int
                petId: int

            config = {
                "type": "event",
                "name": "ProcessFoodOrder",
                "description": "basic-tutorial event step",
                "subscribes": ["process-food-order"],
                "emits": ["notification"],
                "input": InputSchema.model_json_schema(),
                "flows": ["basic-tutorial"],
            }

            async def handler(input, context):
                context.logger.info("Step 02 – Process food order", {"input": input})
                order = create_order(input)
                await context.state.set("orders_python", order["id"], order)
                await context.emit({"topic": "notification", "data": {"email": input["email"],
                                    "templateId": "new-order", "templateData": order}})
        """,
        "steps/petstore/services/__init__.py": "",
        "steps/petstore/services/orders.py": """
            def create_order(data):
                return {"id": data["id"], "quantity": data["quantity"], "petId": data["petId"], "status": "placed"}
        """,
        "steps/petstore/notification.step.js": """
            export const config = {
              type: 'event',
              name: 'Notification',
              description: 'Checks a state change',
              flows: ['basic-tutorial'],
              subscribes: ['notification'],
              emits: [],
            }

            export const handler = async (input, { traceId, logger, state }) => {
              logger.info('Step 03 – Sending notification', { input })
              await state.set('notifications', traceId, { to: input.email, order: input.templateData })
            }
        """,
    })
    (root / "node_modules").mkdir()
    (root / "node_modules" / "zod").symlink_to(ZOD / "zod")
    return root


def test_scaffold_flow_runs_unchanged(tmp_path, start_host):
    host = start_host(scaffold(tmp_path))
    r = httpx.post(f"{host.url}/basic-tutorial", json={"pet": {"name": "Rex", "photoUrl": "x.png"},
                                                       "foodOrder": {"id": "o-1", "quantity": 2}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Rex" and body["id"] == 1
    trace = body["traceId"]
    deadline = time.monotonic() + 15
    names: set = set()
    while time.monotonic() < deadline:
        logs = httpx.get(f"{host.url}/__steppe/logs", params={"traceId": trace}).json()
        names = {r.get("step") for r in logs}
        if "Notification" in names:
            break
        time.sleep(0.1)
    assert {"ApiTrigger", "ProcessFoodOrder", "Notification"} <= names
    msgs = [r["msg"] for r in logs]
    assert "Step 03 – Sending notification" in msgs
    assert httpx.post(f"{host.url}/basic-tutorial", json={"pet": {"name": 1}}).status_code == 400
    doc = httpx.get(f"{host.url}/openapi.json").json()
    schema = doc["paths"]["/basic-tutorial"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["properties"]["id"]["type"] == "number" and set(schema["required"]) == {"id", "name", "photoUrl"}
