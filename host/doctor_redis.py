"""`steppe doctor` for a project on Redis: can this host reach it with `redis_url`, and is it set up as
docs/scaling.md asks (AOF persistence, `noeviction`, room under `maxmemory`)? Steppe's at-least-once is only
as good as Redis's persistence, and an evicting Redis drops queued events without a word."""

from __future__ import annotations

import asyncio
from typing import Any

from .settings import Settings


async def _config(client: Any, name: str) -> str | None:
    """A Redis setting, or None where CONFIG is refused (managed Redis services often disable it)."""
    from redis.exceptions import RedisError

    try:
        found = await client.config_get(name)
    except RedisError:
        return None
    value = found.get(name.encode(), found.get(name))
    return None if value is None else value.decode() if isinstance(value, bytes) else str(value)


async def _check(settings: Settings) -> tuple[list[str], bool]:
    from .redis_conn import RedisConn

    conn = RedisConn(settings.redis_url, settings.redis_prefix)
    try:
        try:
            await conn.check()  # the start's own check, in its words
        except RuntimeError as e:
            return [str(e)], True
        info = await conn.client.info()
        policy, appendonly = await _config(conn.client, "maxmemory-policy"), await _config(conn.client, "appendonly")
    finally:
        await conn.close()
    limit, used = int(info.get("maxmemory", 0) or 0), int(info.get("used_memory", 0) or 0)
    lines = [f"Redis at {conn.where()}: ok (Redis {info.get('redis_version', '?')}; appendonly {appendonly or '?'}, "
             f"maxmemory-policy {policy or '?'}, used memory {used // 1024} KiB of "
             f"{f'{limit // 1024} KiB' if limit else 'no limit'})"]
    if policy is None or appendonly is None:
        lines.append("  warning: Redis refused CONFIG GET, so its persistence and eviction settings are unknown "
                     "here: check appendonly and maxmemory-policy with your provider (docs/scaling.md)")
    if policy is not None and policy != "noeviction":
        lines.append(f"  warning: maxmemory-policy is {policy}: when Redis is full it evicts keys, which can drop "
                     "queued events and state without a word; set it to noeviction")
    if appendonly == "no":
        lines.append("  warning: appendonly is no: a Redis restart loses every accepted event since its last "
                     "snapshot; set appendonly yes and appendfsync everysec")
    unusable = False
    if info.get("role", "master") != "master":
        lines.append("  error: this Redis is a replica, which refuses writes: point redis_url at the primary")
        unusable = True
    if limit and used > limit:
        lines.append("  error: Redis is out of memory (used memory past maxmemory), so it refuses emits and "
                     "writes: free memory in it or raise maxmemory")
        unusable = True
    return lines, unusable


def check_redis(settings: Settings) -> tuple[list[str], bool]:
    """Lines to print, and whether Redis is unusable for this project (doctor then exits 1). Warnings about
    its settings are printed but do not fail the check."""
    return asyncio.run(_check(settings))
