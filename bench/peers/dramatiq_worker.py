"""The Dramatiq side of R1's peer (see dramatiq_peer): its Redis broker on the namespace the bench gives in
the environment, and the actor doing the one-hop work — receive an event, write one state key in Redis.
Imported by the worker process (`dramatiq bench.peers.dramatiq_worker`) and by the bench to send."""

from __future__ import annotations

import json
import os

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

URL_ENV, NAMESPACE_ENV = "STEPPE_PEER_REDIS_URL", "STEPPE_PEER_NAMESPACE"
NAMESPACE = os.environ[NAMESPACE_ENV]
broker = RedisBroker(url=os.environ[URL_ENV], namespace=NAMESPACE)
dramatiq.set_broker(broker)
_state = redis.Redis.from_url(os.environ[URL_ENV])


def state_key(run: str) -> str:
    return f"{NAMESPACE}:state:{run}"


@dramatiq.actor(max_retries=3, queue_name="hop")
def handle(run: str, i: int) -> None:
    # the state write: one key per event, a field of the run's hash (so the bench counts them with HLEN)
    _state.hset(state_key(run), str(i), json.dumps({"run": run, "i": i}))
