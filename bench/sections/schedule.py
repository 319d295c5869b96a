"""Schedule accuracy (achieved rate, ticks taken, lateness) and samples stored over samples produced.

cpu-pyjoules and the seed's method each run as a whole client on the "all zones" tree (two sockets with
package, core, uncore and dram, plus psys, which pyJoules 0.5.1 does not see), behind ``bench/probe_impl.py``,
a MONITOR_IMPL wrapper that notes the monotonic time of every reading the collector puts on its queue and
counts the records ``process_data`` produces, without changing either implementation. Millisecond sample
timestamps in Prometheus would be too coarse to measure lateness at 1 kHz.

Due times are the ideal absolute schedule from the first reading: tick k is due at t0 + k / rate. A slot
is taken when a reading falls in it; lateness is the time from the slot's due time to the reading.
After the run the client gets SIGTERM, and Prometheus is asked how many of its samples it stored.
"""

from __future__ import annotations

import time

from bench.context import ALL_ZONES_TREE, Context
from bench.measure import TickStats, count_stored, fmt, read_probe_records, read_probe_ticks
from bench.procfs import cpu_times, steal_fraction
from bench.report import Section, Table
from bench.sections.common import METHODS, make_client


def run(ctx: Context) -> Section:
    plan = ctx.plan
    sched = Table(
        f"Sampling schedule over {plan.sched_seconds:g} s",
        [
            "rate",
            "method",
            "ticks due",
            "ticks taken",
            "taken",
            "achieved Hz",
            "lateness p50 (ms)",
            "lateness p99 (ms)",
            "lateness max (ms)",
            "host steal",
        ],
    )
    stored_t = Table(
        "Samples stored in Prometheus / samples produced (whole run, SIGTERM at the end)",
        ["rate", "method", "zones", "produced", "stored", "stored / produced", "exit"],
    )
    targets: list[tuple[str, str, bool | None]] = []
    with ctx.fake_tree("sched", ALL_ZONES_TREE, update_ms=1.0) as fake, ctx.prometheus("sched") as prom:
        zones = fake.zone_count()
        for rate in plan.sched_rates:
            keys = ["ours", "seed"]
            if rate == max(plan.sched_rates) and "realtime" in plan.sched_variants:
                keys.insert(1, "ours-rt")
            for key in keys:
                method = METHODS[key]
                host = f"sched-{key}-{rate:g}hz"
                started = time.time()
                times0 = cpu_times()
                with make_client(ctx, prom, fake, method, host, rate, probe=True).running() as run:
                    time.sleep(plan.sched_skip_s + plan.sched_seconds)
                rc = run.rc
                steal = steal_fraction(times0, cpu_times())
                stats: TickStats = read_probe_ticks(run.probe_file("ticks"), skip_s=plan.sched_skip_s)
                produced = read_probe_records(run.probe_file("records"))
                stored = count_stored(
                    prom, method.data(f'host="{host}"'), time.time() - started + 120, at=time.time() + 60
                )
                seen_zones = zones if key.startswith("ours") else zones - 1  # pyJoules 0.5.1 has no psys
                ctx.log(
                    f"schedule: {rate:g} Hz {key}: {stats.taken}/{stats.due} ticks, p99 {stats.late(99):.3f} ms,"
                    f" stored {stored}/{produced}, exit {rc}"
                )
                sched.rows.append(
                    [
                        f"{rate:g} Hz",
                        method.label,
                        f"{stats.due:,}",
                        f"{stats.taken:,}",
                        f"{100 * stats.taken_fraction:.2f}%",
                        fmt(stats.rate_hz),
                        fmt(stats.late(50), 3),
                        fmt(stats.late(99), 3),
                        fmt(max(stats.lateness_ms), 3),
                        f"{100 * steal:.1f}%",
                    ]
                )
                stored_t.rows.append(
                    [
                        f"{rate:g} Hz",
                        method.label,
                        str(seen_zones),
                        f"{produced:,}",
                        f"{stored:,}",
                        f"{100 * stored / produced:.3f}%" if produced else "n/a",
                        str(rc),
                    ]
                )
                if key == "ours-rt":
                    targets.append(
                        (
                            f">= 99.5% of ticks taken at {rate:g} Hz, with SAMPLER_REALTIME=true",
                            f"{100 * stats.taken_fraction:.2f}% (host steal {100 * steal:.1f}%)",
                            stats.taken_fraction >= 0.995 if rate >= 1000 else None,
                        )
                    )
                if key == "ours" and rate == max(plan.sched_rates):
                    targets.append(
                        (
                            f">= 99.5% of ticks taken at {rate:g} Hz",
                            f"{100 * stats.taken_fraction:.2f}% (host steal {100 * steal:.1f}%)",
                            stats.taken_fraction >= 0.995 if rate >= 1000 else None,
                        )
                    )
                    targets.append(
                        (
                            f"p99 lateness < 2 ms at {rate:g} Hz",
                            f"{stats.late(99):.3f} ms",
                            stats.late(99) < 2.0 if rate >= 1000 else None,
                        )
                    )
                    targets.append(
                        (
                            f"one client at {rate:g} Hz, all {zones} zones: stored / produced",
                            f"{stored:,} / {produced:,}",
                            None if rate < 1000 else stored == produced,
                        )
                    )
    sched.notes.append(
        "The seed's method sleeps one interval after each measurement, so every tick starts late by the cost of"
        " the last one and the error accumulates: it takes fewer slots, and its lateness is spread over the whole"
        " interval. Lateness is the time from a tick's due time to the reading's own time stamp (cpu-pyjoules) or"
        " to its put on the queue (the seed's method, after its measurement); the first seconds are left out."
        " Host steal is the share of this VM's CPU time its hypervisor took during the run (/proc/stat): a"
        " sampler cannot run while its virtual CPU is descheduled. Above 200 Hz cpu-pyjoules samples in a child"
        " process; SAMPLER_REALTIME=true gives that child real-time priority (needs CAP_SYS_NICE; root here)."
    )
    return Section("schedule", "Sampling schedule and storage", __doc__.split("\n", 1)[1], [sched, stored_t], targets)
