"""Where the time goes: CPU per sampling tick of cpu-pyjoules, split by the client's threads.

The client is run behind the probe (which records each pipeline thread's OS thread id by name; its own
cost is a clock read and two list appends per tick, charged to ``get_power``) on the CPU section's tree,
and each thread's CPU is read from ``/proc/<pid>/task/<tid>/schedstat`` over a fixed window, with the
process's context switches. Threads:
``get_power`` (sampling), ``process_data`` (wrap correction, power, record dicts), ``batcher``
(validation, ordering guard, grouping, protobuf + snappy), ``sender`` (HTTP), ``MainThread`` (waits for
a stop signal), any others (e.g. the health endpoint), and cpu-pyjoules's sampler child process, which
samples above 200 Hz while ``get_power`` only relays its readings.
"""

from __future__ import annotations

import json
import time

from bench.context import CPU_TREE, Context
from bench.measure import count_stored, fmt
from bench.procfs import ProcessUsage
from bench.report import Section, Table
from bench.sections.common import METHODS, make_client

ORDER = ("get_power", "process_data", "batcher", "sender", "MainThread")


def run(ctx: Context) -> Section:
    plan = ctx.plan
    method = METHODS["ours"]
    table = Table(
        "cpu-pyjoules: µs of CPU per sampling tick, by thread",
        ["rate", *ORDER, "other threads", "sampler process", "total", "context switches per tick"],
    )
    with ctx.fake_tree("threads", CPU_TREE, update_ms=1.0) as fake, ctx.prometheus("threads") as prom:
        for rate in plan.cpu_rates:
            host = f"threads-{rate:g}hz"
            with make_client(ctx, prom, fake, method, host, rate, probe=True).running() as run:
                pid = run.client.require_pid()
                time.sleep(plan.cpu_warmup_s)
                names = {int(k): v for k, v in json.loads(run.probe_file("threads").read_text()).items()}
                own = set(ProcessUsage.read(pid, include_children=False).tasks)
                t0, u0 = time.time(), ProcessUsage.read(pid)
                time.sleep(plan.cpu_window_s)
                t1, u1 = time.time(), ProcessUsage.read(pid)
            ticks = count_stored(prom, method.selector(host), t1 - t0, at=t1)
            per: dict[str, float] = {"sampler process": 0.0}
            for tid, used in u1.per_task_since(u0).items():
                name = names.get(tid, "other") if tid in own else "sampler process"
                name = name if name in (*ORDER, "sampler process") else "other"
                per[name] = per.get(name, 0.0) + used.cpu_ns / 1e9
            switches = u1.since(u0).switches
            total = sum(per.values())
            ctx.log(f"threads: {rate:g} Hz: " + ", ".join(f"{k} {1e6 * v / ticks:.0f}" for k, v in per.items()))
            table.rows.append(
                [
                    f"{rate:g} Hz",
                    *(fmt(1e6 * per.get(n, 0.0) / ticks) for n in ORDER),
                    fmt(1e6 * per.get("other", 0.0) / ticks),
                    fmt(1e6 * per["sampler process"] / ticks),
                    fmt(1e6 * total / ticks),
                    fmt(switches / ticks, 2),
                ]
            )
    table.notes.append(
        f"Window {plan.cpu_window_s:g} s after {plan.cpu_warmup_s:g} s of warm-up; divided by the ticks stored in"
        " that window. Fixed costs per second (a push, wake-ups of idle threads) weigh most at low rates."
    )
    return Section("threads", "Where the time goes", __doc__.split("\n", 1)[1], [table], [])
