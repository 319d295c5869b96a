#!/usr/bin/env bash
# docker-compose_helper.sh: run Docker Compose for the power-monitoring stack with the right files, and
# check the host before `up` so that problems are explained in plain words instead of crash loops.
#
# Configuration is read from .env, then .env.local (git-ignored: local overrides and the Grafana password),
# then the process environment (highest precedence, as with Compose itself). The files are parsed line by
# line, never sourced: UID and GID are read-only in bash, and a value must never run as code.
set -euo pipefail

HELPER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=$(basename "$0")
PROFILE_NAME=docker-pyjoules
CLIENT_SERVICE=cpu-pyjoules
BASE_SERVICE=base-monitoring-client

usage() {
  cat <<EOF
Usage: ./$PROG [--print-command] <compose command> [arguments...]
       ./$PROG --help

Runs Docker Compose (\`docker compose\`, else \`docker-compose\`) on docker-compose.yml plus the override for
the configured RAPL access mode. Every command and argument is passed through unchanged, e.g.:

  ./$PROG up -d --build      build the images and start Prometheus, Grafana and cpu-pyjoules
  ./$PROG ps                 show the services and their health
  ./$PROG logs -f cpu-pyjoules
  ./$PROG down               stop and remove the containers (add -v to delete the data volumes too)

Before \`up\` it checks, and explains what to do when a check fails:
  - the Docker daemon is reachable;
  - the host exposes RAPL zones (POWERCAP_HOST_DIR, or /sys/class/powercap outside mount mode);
  - in AppArmor mode: AppArmor is enabled and the '$PROFILE_NAME' profile is loaded;
  - a Grafana admin password is set; if none is, one is generated into .env.local (mode 600).
  Checks about the client are skipped when the services named on the command line exclude it.

RAPL access modes (RAPL_ACCESS in .env; PRIVILEGED=True/true/1/yes forces privileged):
  mount       default: the host's powercap tree bind-mounted read-only, all capabilities dropped
  apparmor    reads /sys/class/powercap under AppArmor profile '$PROFILE_NAME' (adds docker-compose.apparmor.yml)
  privileged  privileged container reading /sys/class/powercap (adds docker-compose.privileged.yml)

Options:
  --print-command   run the checks, then print the compose command instead of running it (writes nothing)
  -h, --help        this help

Environment:
  EXTRA_COMPOSE_FILES   colon-separated extra compose files appended after the mode's files
  HELPER_COMPOSE        the compose command to use (e.g. "docker-compose"), instead of auto-detection
EOF
}

# Exit statuses as for the client: 2 = configuration problem, 3 = environment problem.
die() {
  echo "$PROG: $*" >&2
  exit 2
}

die_env() {
  echo "$PROG: $*" >&2
  exit 3
}

# ---------------------------------------------------------------------------------------------------
# Configuration: .env < .env.local < environment. Values land in CONF; nothing is evaluated.
# ---------------------------------------------------------------------------------------------------
declare -A CONF=()
declare -a CONF_KEYS=()

conf_set() {
  local key=$1 value=$2
  [[ -v "CONF[$key]" ]] || CONF_KEYS+=("$key")
  CONF[$key]=$value
}

# Parse one dotenv file: KEY=VALUE lines; blank lines and '#' comments ignored; optional 'export ';
# spaces around the key and '=' ignored; "double" or 'single' quoted values taken verbatim (no
# expansion); an unquoted value ends before ' #' and loses surrounding spaces.
parse_env_file() {
  local file=$1 line key value lineno=0
  local re_dq='^"(([^"\\]|\\.)*)"[[:space:]]*(#.*)?$'
  local re_sq="^'([^']*)'[[:space:]]*(#.*)?\$"
  local re_comment='^(.*[^[:space:]])?[[:space:]]+#.*$'
  [[ -f "$file" ]] || return 0
  while IFS= read -r line || [[ -n "$line" ]]; do
    lineno=$((lineno + 1))
    line=${line%$'\r'}
    line=${line#"${line%%[![:space:]]*}"}
    if [[ -z "$line" || "$line" == \#* ]]; then
      continue
    fi
    if [[ "$line" == export[[:space:]]* ]]; then
      line=${line#export}
      line=${line#"${line%%[![:space:]]*}"}
    fi
    if [[ "$line" != *=* ]]; then
      die "$file:$lineno: expected KEY=VALUE, got '$line'"
    fi
    key=${line%%=*}
    key=${key%"${key##*[![:space:]]}"}
    value=${line#*=}
    value=${value#"${value%%[![:space:]]*}"}
    [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "$file:$lineno: '$key' is not a valid variable name"
    if [[ "$value" == \"* ]]; then
      [[ "$value" =~ $re_dq ]] || die "$file:$lineno: unterminated double quote in the value of $key"
      value=${BASH_REMATCH[1]}
      value=${value//\\\"/\"}
      value=${value//\\\\/\\}
    elif [[ "$value" == \'* ]]; then
      [[ "$value" =~ $re_sq ]] || die "$file:$lineno: unterminated single quote in the value of $key"
      value=${BASH_REMATCH[1]}
    elif [[ "$value" == \#* ]]; then
      value=
    else
      if [[ "$value" =~ $re_comment ]]; then
        value=${BASH_REMATCH[1]}
      fi
      value=${value%"${value##*[![:space:]]}"}
    fi
    conf_set "$key" "$value"
  done <"$file"
}

load_config() {
  parse_env_file "$HELPER_DIR/.env"
  parse_env_file "$HELPER_DIR/.env.local"
  # The environment wins, as it does for Compose. `printenv` reads the real environment, so bash's own
  # unexported UID variable does not override GID/UID from the files.
  local key value
  for key in "${CONF_KEYS[@]}" GF_SECURITY_ADMIN_PASSWORD HOST_LABEL POWERCAP_HOST_DIR RAPL_ACCESS PRIVILEGED \
    EXTRA_COMPOSE_FILES; do
    if value=$(printenv -- "$key"); then
      conf_set "$key" "$value"
    fi
  done
}

conf() { # conf KEY [DEFAULT]
  if [[ -v "CONF[$1]" && -n "${CONF[$1]}" ]]; then
    printf '%s' "${CONF[$1]}"
  else
    printf '%s' "${2:-}"
  fi
}

is_true() {
  case "${1,,}" in
    true | 1 | yes | y | on) return 0 ;;
    *) return 1 ;;
  esac
}

# ---------------------------------------------------------------------------------------------------
# Compose command, mode and files
# ---------------------------------------------------------------------------------------------------
declare -a COMPOSE=()
detect_compose() {
  if [[ -n "${HELPER_COMPOSE:-}" ]]; then
    read -r -a COMPOSE <<<"$HELPER_COMPOSE"
  elif docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose)
  else
    die_env "neither 'docker compose' (Compose v2 plugin) nor 'docker-compose' is installed; install one of them"
  fi
}

# v1 (the Python docker-compose 1.x) differs from v2 in what it accepts; a v2 binary may also be named
# docker-compose, so ask it.
compose_is_v1() {
  local version
  version=$("${COMPOSE[@]}" version --short 2>/dev/null) || version=
  [[ "${version#v}" == 1.* ]]
}

MODE=
rapl_mode() {
  if is_true "$(conf PRIVILEGED)"; then
    MODE=privileged
    return
  fi
  MODE=$(conf RAPL_ACCESS mount)
  MODE=${MODE,,}
  case "$MODE" in
    mount | apparmor | privileged) ;;
    *) die "RAPL_ACCESS='$MODE' is invalid: expected mount, apparmor or privileged (see .env)" ;;
  esac
}

declare -a FILES=()
compose_files() {
  FILES=(-f docker-compose.yml)
  case "$MODE" in
    privileged) FILES+=(-f docker-compose.privileged.yml) ;;
    apparmor) FILES+=(-f docker-compose.apparmor.yml) ;;
  esac
  local extra file
  local -a extra_files=()
  extra=$(conf EXTRA_COMPOSE_FILES)
  if [[ -n "$extra" ]]; then
    IFS=: read -r -a extra_files <<<"$extra"
    for file in "${extra_files[@]}"; do
      [[ -n "$file" ]] || continue
      [[ -f "$file" ]] || die "EXTRA_COMPOSE_FILES names '$file', which does not exist"
      FILES+=(-f "$file")
    done
  fi
}

# ---------------------------------------------------------------------------------------------------
# Checks before `up`
# ---------------------------------------------------------------------------------------------------
declare -a PROBLEMS=()
problem() { PROBLEMS+=("$*"); }

# Services named after `up` and its options; empty means "all".
declare -a UP_SERVICES=()
up_services() {
  local skip_next=0 arg
  for arg in "${@:2}"; do
    if ((skip_next)); then
      skip_next=0
      continue
    fi
    case "$arg" in
      -t | --timeout | --scale | --exit-code-from | --attach | --no-attach | --pull | --wait-timeout) skip_next=1 ;;
      -*) ;;
      *) UP_SERVICES+=("$arg") ;;
    esac
  done
}

starts_service() {
  local name=$1 s
  ((${#UP_SERVICES[@]} == 0)) && return 0
  for s in "${UP_SERVICES[@]}"; do
    [[ "$s" == "$name" ]] && return 0
  done
  return 1
}

check_docker() {
  local out
  if ! out=$(docker info --format '{{.ServerVersion}}' 2>&1); then
    problem "Docker daemon not reachable (${DOCKER_HOST:-default socket}): ${out##*$'\n'}
    Start it (e.g. 'sudo systemctl start docker'), or give your user access to it
    ('sudo usermod -aG docker \$USER', then log in again), or run this script with sudo."
  fi
}

has_rapl_zones() {
  local dir=$1 zone
  for zone in "$dir"/intel-rapl/intel-rapl:*; do
    [[ -e "$zone/energy_uj" ]] && return 0
  done
  return 1
}

check_rapl() {
  local dir
  if [[ "$MODE" == mount ]]; then
    dir=$(conf POWERCAP_HOST_DIR /sys/devices/virtual/powercap)
  else
    dir=/sys/class/powercap
  fi
  if ! has_rapl_zones "$dir"; then
    problem "No RAPL zones under $dir (expected $dir/intel-rapl/intel-rapl:0/energy_uj).
    This host does not expose CPU energy counters: virtual machines and non-x86 machines usually
    do not; on bare-metal Intel/AMD try 'sudo modprobe intel_rapl_msr' (and intel_rapl_common).
    To run only the server side here: ./$PROG up -d prometheus grafana"
  fi
}

check_apparmor() {
  local enabled
  enabled=$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || echo N)
  if [[ "$enabled" != Y ]]; then
    problem "RAPL_ACCESS=apparmor, but AppArmor is not enabled in this kernel, so the '$PROFILE_NAME'
    profile cannot be used. Use the default RAPL_ACCESS=mount in .env instead."
    return
  fi
  local profiles=/sys/kernel/security/apparmor/profiles
  if [[ -r "$profiles" ]]; then
    if ! grep -q "^$PROFILE_NAME (" "$profiles"; then
      problem "RAPL_ACCESS=apparmor, but the AppArmor profile '$PROFILE_NAME' is not loaded. Load it with:
    sudo $HELPER_DIR/AppArmor/setup_docker-pyjoules.sh"
    fi
  else
    echo "$PROG: cannot read $profiles to confirm the '$PROFILE_NAME' profile is loaded (needs root);" \
      "if the client fails to start, run: sudo $HELPER_DIR/AppArmor/setup_docker-pyjoules.sh" >&2
  fi
  if compose_is_v1; then
    problem "RAPL_ACCESS=apparmor needs Compose v2 ('docker compose'): docker-compose v1 rejects the
    'systempaths=unconfined' security option this mode needs. Install the Compose v2 plugin, or use
    RAPL_ACCESS=mount (the default)."
  fi
}

GENERATED_PASSWORD_FILE=
check_grafana_password() {
  [[ -n "$(conf GF_SECURITY_ADMIN_PASSWORD)" ]] && return 0
  local password
  password=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24) || true
  [[ ${#password} -eq 24 ]] || die "could not generate a Grafana password from /dev/urandom"
  conf_set GF_SECURITY_ADMIN_PASSWORD "$password"
  GENERATED_PASSWORD_FILE="$HELPER_DIR/.env.local"
}

save_generated_password() {
  [[ -n "$GENERATED_PASSWORD_FILE" ]] || return 0
  local file=$GENERATED_PASSWORD_FILE
  (
    umask 077
    [[ -e "$file" ]] || : >"$file"
    chmod 600 "$file"
    printf '# Generated by %s on %s: Grafana admin password (user %s).\nGF_SECURITY_ADMIN_PASSWORD=%s\n' \
      "$PROG" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(conf GRAFANA_ADMIN_USER admin)" \
      "$(conf GF_SECURITY_ADMIN_PASSWORD)" >>"$file"
  )
  echo "$PROG: no Grafana admin password was set; generated one and saved it in $file (mode 600)." >&2
  echo "$PROG: log in to Grafana as '$(conf GRAFANA_ADMIN_USER admin)' with the password in that file." >&2
}

run_up_checks() {
  check_docker
  if starts_service "$CLIENT_SERVICE"; then
    check_rapl
    if [[ "$MODE" == apparmor ]]; then
      check_apparmor
    fi
  fi
  if starts_service grafana; then
    check_grafana_password
  fi
  if ((${#PROBLEMS[@]})); then
    echo "$PROG: not starting the stack; fix the following first:" >&2
    local p
    for p in "${PROBLEMS[@]}"; do
      printf '  - %s\n' "$p" >&2
    done
    exit 3
  fi
}

# ---------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------
main() {
  local print_only=0
  while (($#)); do
    case "$1" in
      -h | --help) usage; return 0 ;;
      --print-command) print_only=1; shift ;;
      *) break ;;
    esac
  done
  if (($# == 0)); then
    usage >&2
    return 2
  fi

  cd "$HELPER_DIR"
  load_config
  rapl_mode
  compose_files
  detect_compose

  local command=$1
  if [[ "$command" == up ]]; then
    up_services "$@"
    run_up_checks
    # Compose passes the real hostname to the client as its host label (inside, it would see a container id).
    if [[ -z "$(conf HOST_LABEL)" ]]; then
      conf_set HOST_LABEL "$(hostname)"
    fi
  fi

  # Everything from the files goes to Compose through the environment: .env.local and generated values
  # would otherwise be invisible to it. `env` can set UID/GID for the child, which bash itself cannot.
  local -a assignments=() key
  for key in "${CONF_KEYS[@]}"; do
    assignments+=("$key=${CONF[$key]}")
  done

  local -a prebuild=()
  if needs_base_build "$@"; then
    prebuild=("${COMPOSE[@]}" "${FILES[@]}" build "$BASE_SERVICE")
  fi

  if ((print_only)); then
    if [[ -n "$GENERATED_PASSWORD_FILE" ]]; then
      echo "# would generate a Grafana password into $GENERATED_PASSWORD_FILE"
    fi
    echo "# mode: $MODE"
    if ((${#prebuild[@]})); then
      printf '%q ' "${prebuild[@]}"
      echo
    fi
    printf '%q ' "${COMPOSE[@]}" "${FILES[@]}" "$@"
    echo
    return 0
  fi

  save_generated_password
  if ((${#prebuild[@]})); then
    env "${assignments[@]}" "${prebuild[@]}"
  fi
  exec env "${assignments[@]}" "${COMPOSE[@]}" "${FILES[@]}" "$@"
}

# The client image is built FROM the base image. Compose v1 builds in dependency order but v2 may build
# in parallel, so the helper builds the base first whenever this command could build the client.
needs_base_build() {
  local command=$1 arg
  case "$command" in
    build)
      (($# == 1)) && return 0
      for arg in "${@:2}"; do
        [[ "$arg" == "$CLIENT_SERVICE" ]] && return 0
      done
      return 1
      ;;
    up | create)
      if [[ "$command" == up ]] && ! starts_service "$CLIENT_SERVICE"; then
        return 1
      fi
      for arg in "${@:2}"; do
        [[ "$arg" == --build ]] && return 0
      done
      ! docker image inspect "$(conf BASE_MONITORING_CLIENT_IMAGE base-monitoring-client:latest)" >/dev/null 2>&1
      ;;
    *) return 1 ;;
  esac
}

main "$@"
