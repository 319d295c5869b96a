#!/bin/sh
# Start Prometheus for the power-monitoring stack with a configuration written from the environment.
#
# Why a script: the stack is configured in one place (.env), and the upstream image is busybox-based with
# no templating tool, so this POSIX sh script renders prometheus.yml at start-up and then execs Prometheus
# (PID 1 stays Prometheus, so SIGTERM from `docker stop` reaches it). Works with Prometheus 2.39+ and 3.x.
#
# Environment (defaults in brackets):
#   PROMETHEUS_SCRAPE_INTERVAL      [15s]  global scrape interval (used by the self-scrape job)
#   PROMETHEUS_OUT_OF_ORDER_WINDOW  [10m]  accept samples this far behind the newest one of a series, so a
#                                          client replaying its buffer after an outage is not rejected; 0 = off
#   PROMETHEUS_RETENTION            [30d]  --storage.tsdb.retention.time
#   PROMETHEUS_RETENTION_SIZE       []     --storage.tsdb.retention.size (e.g. 5GB); empty = no size limit
#   PROMETHEUS_CONFIG_FILE          [/tmp/prometheus.yml]  where the rendered configuration is written
#   PROMETHEUS_DATA_DIR             [/prometheus]          --storage.tsdb.path
#   PROMETHEUS_RULE_FILES           [/etc/prometheus-stack/alerts.yml]  alerting rule files (space-separated,
#                                          globs allowed) listed under rule_files; empty = no rules
#   PROMETHEUS_BIN                  []     the binary; default /bin/prometheus, else `prometheus` on PATH
# Arguments are passed on to Prometheus. `entrypoint.sh --print-config` only prints the configuration.
set -eu

scrape_interval=${PROMETHEUS_SCRAPE_INTERVAL:-15s}
ooo_window=${PROMETHEUS_OUT_OF_ORDER_WINDOW:-10m}
retention=${PROMETHEUS_RETENTION:-30d}
retention_size=${PROMETHEUS_RETENTION_SIZE:-}
config_file=${PROMETHEUS_CONFIG_FILE:-/tmp/prometheus.yml}
data_dir=${PROMETHEUS_DATA_DIR:-/prometheus}
rule_files=${PROMETHEUS_RULE_FILES-/etc/prometheus-stack/alerts.yml}

die() {
  echo "prometheus entrypoint: $*" >&2
  exit 2
}

# A Prometheus duration: one or more <number><unit> groups, e.g. 15s, 1h30m, 0.
check_duration() {
  name=$1 value=$2
  [ "$value" = "0" ] && return 0
  rest=$value
  while [ -n "$rest" ]; do
    digits=${rest%%[!0-9]*}
    [ -n "$digits" ] || die "$name='$value' is invalid: expected a duration such as 15s, 10m, 30d or 1h30m"
    rest=${rest#"$digits"}
    case $rest in
      ms*) rest=${rest#ms} ;;
      [smhdwy]*) rest=${rest#?} ;;
      *) die "$name='$value' is invalid: expected a duration such as 15s, 10m, 30d or 1h30m" ;;
    esac
  done
}

check_duration PROMETHEUS_SCRAPE_INTERVAL "$scrape_interval"
check_duration PROMETHEUS_OUT_OF_ORDER_WINDOW "$ooo_window"
check_duration PROMETHEUS_RETENTION "$retention"
[ "$scrape_interval" != "0" ] || die "PROMETHEUS_SCRAPE_INTERVAL='0' is invalid: expected a positive duration such as 15s"
if [ -n "$retention_size" ]; then
  case $retention_size in
    *[!0-9KMGTPEB]* | [!0-9]*) die "PROMETHEUS_RETENTION_SIZE='$retention_size' is invalid: expected a size such as 512MB or 5GB" ;;
  esac
fi

render_config() {
  cat <<YAML
# Written by prometheus/entrypoint.sh at start-up from the container's environment; edit .env, not this.
global:
  scrape_interval: $scrape_interval
  evaluation_interval: $scrape_interval
YAML
  if [ "$ooo_window" != "0" ]; then
    cat <<YAML
storage:
  tsdb:
    out_of_order_time_window: $ooo_window
YAML
  fi
  if [ -n "$rule_files" ]; then
    echo "rule_files:"
    set -f # split on spaces, but leave globs to Prometheus
    for rule_file in $rule_files; do
      echo "  - \"$rule_file\""
    done
    set +f
  fi
  cat <<YAML
scrape_configs:
  # Prometheus's own health and ingestion metrics (remote-write samples received, rejected, TSDB size).
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
YAML
}

if [ "${1:-}" = "--print-config" ]; then
  render_config
  exit 0
fi

bin=${PROMETHEUS_BIN:-}
if [ -z "$bin" ]; then
  if [ -x /bin/prometheus ]; then
    bin=/bin/prometheus
  else
    bin=$(command -v prometheus 2>/dev/null) || die "no prometheus binary at /bin/prometheus or on PATH; set PROMETHEUS_BIN"
  fi
fi

render_config >"$config_file" || die "cannot write $config_file (is its directory writable?)"

set -- \
  "--config.file=$config_file" \
  "--storage.tsdb.path=$data_dir" \
  "--storage.tsdb.retention.time=$retention" \
  --web.enable-remote-write-receiver \
  "$@"
if [ -n "$retention_size" ]; then
  set -- "$@" "--storage.tsdb.retention.size=$retention_size"
fi
exec "$bin" "$@"
