"""`labgen pool fill|status|drain`: machines made ahead, so that `up` (and a workshop's
seats, and verify's runs) claim one in about a second instead of waiting for Vagrant."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from labgen.core.context import Context
from labgen.core.results import Pooled, PoolFill, PoolMade
from labgen.machine import pool, providers
from labgen.machine.instance import host_name


def fill(ctx: Context, engines: list[str], count: int, jobs: int = 1) -> PoolFill:
    """Top the pool of `ctx.host` (None: this machine) up to `count` ready machines of
    each engine, `jobs` made at a time: a pool per host and engine.

    A pooled machine that is no longer fit to be claimed (restarted, its dockerd gone)
    does not count, and is destroyed the next time a claim meets it.
    """
    on_host = host_name(ctx.host)
    provider = providers.choose(ctx.provider, ctx.say)
    for engine in engines:  # once, before the threads: J of them must not each build it
        provider.ensure_box(ctx.say, engine=engine)
    here = {i.name for i in pool.members(host=on_host)}
    rows = [row for row in pool.status() if row.ready and row.name in here]
    ready = {e: sum(1 for row in rows if row.engine == e) for e in engines}
    wanted = [e for e in engines for _ in range(max(0, count - ready[e]))]
    lock = threading.Lock()

    def make(engine: str) -> PoolMade:
        started = time.monotonic()

        def say(line: str) -> None:
            with lock:
                ctx.say(line)

        name = pool.make(provider, engine, say, on_host)
        return PoolMade(name, engine, round(time.monotonic() - started, 1))

    if jobs <= 1 or len(wanted) <= 1:  # in the main thread: Ctrl-C tears it down there
        made = [make(engine) for engine in wanted]
    else:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pool") as workers:
            made = list(workers.map(make, wanted))
    return PoolFill(provider.name, made, sum(ready.values()))


def status() -> list[Pooled]:
    """Every pooled machine and whether it can be claimed."""
    return pool.status()


def drain(ctx: Context) -> list[str]:
    """Destroy every pooled machine; their names."""
    return pool.drain(ctx.say)
