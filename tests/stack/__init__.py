"""The stack on Docker and its files: compose, helper, Prometheus entrypoint and rules, Grafana."""
