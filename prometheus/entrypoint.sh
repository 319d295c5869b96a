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
#   PROMETHEUS_LISTEN_ADDRESS       [:9090]  --web.listen-address; its port is also the self-scrape's and the
#                                          healthcheck's (both on the loopback interface)
#   PROMETHEUS_RULE_FILES           [/etc/prometheus-stack/alerts.yml]  alerting rule files (space-separated,
#                                          globs allowed) listed under rule_files; empty = no rules
#   PROMETHEUS_BIN                  []     the binary; default /bin/prometheus, else `prometheus` on PATH
#   PROMETHEUS_REMOTE_WRITE_URL     []     also forward every stored sample to this remote-write URL (e.g.
#                                          VictoriaMetrics, docker-compose.victoriametrics.yml); empty = none
# Protected mode (basic auth and TLS; the files are compose secrets the helper writes):
#   PROMETHEUS_WEB_CONFIG_FILE      []     --web.config.file when the file is not empty (an empty or missing
#                                          file means unprotected); it is re-read by Prometheus on every request
#   PROMETHEUS_AUTH_USERNAME        []     user of the self-scrape and the healthcheck when the web config has users
#   PROMETHEUS_AUTH_PASSWORD_FILE   []     that user's password (a file, never a value)
#   PROMETHEUS_TLS_CA_FILE          []     CA that signed the server certificate (empty file: the system's CAs)
#   PROMETHEUS_TLS_SERVER_NAME      [localhost]  name the self-scrape expects in the server certificate
# Arguments are passed on to Prometheus. `entrypoint.sh --print-config` only prints the configuration;
# `entrypoint.sh --healthcheck` asks the running server whether it is ready (the compose healthcheck), with
# the credentials above when it is protected.
set -eu

scrape_interval=${PROMETHEUS_SCRAPE_INTERVAL:-15s}
ooo_window=${PROMETHEUS_OUT_OF_ORDER_WINDOW:-10m}
retention=${PROMETHEUS_RETENTION:-30d}
retention_size=${PROMETHEUS_RETENTION_SIZE:-}
config_file=${PROMETHEUS_CONFIG_FILE:-/tmp/prometheus.yml}
data_dir=${PROMETHEUS_DATA_DIR:-/prometheus}
rule_files=${PROMETHEUS_RULE_FILES-/etc/prometheus-stack/alerts.yml}
forward_url=${PROMETHEUS_REMOTE_WRITE_URL:-}
web_config=${PROMETHEUS_WEB_CONFIG_FILE:-}
auth_user=${PROMETHEUS_AUTH_USERNAME:-}
auth_password_file=${PROMETHEUS_AUTH_PASSWORD_FILE:-}
tls_ca_file=${PROMETHEUS_TLS_CA_FILE:-}
tls_server_name=${PROMETHEUS_TLS_SERVER_NAME:-localhost}
listen_address=${PROMETHEUS_LISTEN_ADDRESS:-:9090}
port=${listen_address##*:}
case $port in
  "" | *[!0-9]*) die "PROMETHEUS_LISTEN_ADDRESS='$listen_address' is invalid: expected [HOST]:PORT such as :9090" ;;
esac

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

# Protected when the web config file has content. Its scheme decides the self-scrape's; its users need the
# name and password file given here (the helper passes both). A name is a plain word, so it can be written
# into YAML and a header unquoted.
secure=false
scheme=http
if [ -n "$web_config" ] && [ -s "$web_config" ]; then
  secure=true
  if grep -q '^[[:space:]]*tls_server_config:' "$web_config"; then
    scheme=https
  fi
  if grep -q '^[[:space:]]*basic_auth_users:' "$web_config"; then
    case $auth_user in
      "" | *[!A-Za-z0-9._-]*) die "PROMETHEUS_AUTH_USERNAME='$auth_user' is invalid: the web config has users, so give the self-scrape's user (letters, digits, '.', '_', '-')" ;;
    esac
    [ -s "$auth_password_file" ] || die "PROMETHEUS_AUTH_PASSWORD_FILE='$auth_password_file' is missing or empty: the web config has users, so the self-scrape needs that user's password file"
  else
    auth_user=
  fi
fi
[ -n "$tls_ca_file" ] && [ -s "$tls_ca_file" ] || tls_ca_file=
case $forward_url in
  "" | http://* | https://*) ;;
  *) die "PROMETHEUS_REMOTE_WRITE_URL='$forward_url' is invalid: expected an http:// or https:// URL" ;;
esac

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
  if [ -n "$forward_url" ]; then
    cat <<YAML
remote_write:
  # Every sample stored here (the clients' and the rules') is forwarded, e.g. to VictoriaMetrics.
  - url: "$forward_url"
YAML
  fi
  cat <<YAML
scrape_configs:
  # Prometheus's own health and ingestion metrics (remote-write samples received, rejected, TSDB size).
  - job_name: prometheus
YAML
  if [ "$scheme" = https ]; then
    echo "    scheme: https"
    echo "    tls_config:"
    echo "      server_name: \"$tls_server_name\""
    [ -z "$tls_ca_file" ] || echo "      ca_file: \"$tls_ca_file\""
  fi
  if [ -n "$auth_user" ]; then
    echo "    basic_auth:"
    echo "      username: \"$auth_user\""
    echo "      password_file: \"$auth_password_file\""
  fi
  cat <<YAML
    static_configs:
      - targets: ["localhost:$port"]
YAML
}

# The compose healthcheck: ready, asked over the server's own scheme with its own credentials. Works with
# busybox wget (upstream image) and GNU wget. The certificate is not verified here: this is a loopback
# liveness probe inside the container, and busybox wget cannot verify certificates anyway.
healthcheck() {
  set -- -q -T 4 -O /dev/null
  [ "$scheme" = http ] || set -- "$@" --no-check-certificate
  if [ -n "$auth_user" ]; then
    token=$(printf '%s:%s' "$auth_user" "$(cat "$auth_password_file")" | base64 | tr -d '\n')
    set -- "$@" --header "Authorization: Basic $token"
  fi
  exec wget "$@" "$scheme://127.0.0.1:$port/-/ready"
}

if [ "${1:-}" = "--print-config" ]; then
  render_config
  exit 0
fi
if [ "${1:-}" = "--healthcheck" ]; then
  healthcheck
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
  "--web.listen-address=$listen_address" \
  --web.enable-remote-write-receiver \
  "$@"
if [ "$secure" = true ]; then
  set -- "$@" "--web.config.file=$web_config"
fi
if [ -n "$retention_size" ]; then
  set -- "$@" "--storage.tsdb.retention.size=$retention_size"
fi
exec "$bin" "$@"
