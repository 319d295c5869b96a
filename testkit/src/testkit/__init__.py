"""Shared helpers for the project's tests and benchmarks (installed editable by ./run-tests.sh).

Kept outside the shipped packages on purpose: nothing here runs in production, but every test suite and
every benchmark needs the same things, so they live here once: processes started and stopped by PID
(``process``), the monitoring client and a fake RAPL tree as such processes (``client``, ``fake_rapl``), a
real Prometheus (``prometheus``, protected with ``webconfig`` when asked) and a real VictoriaMetrics
(``victoriametrics``), both queried the same way (``promql``), a fault-injecting proxy that can also play
a hostile receiver and records request headers (``fault_proxy``), waiting on conditions (``wait``) and free
ports (``ports``).
"""
