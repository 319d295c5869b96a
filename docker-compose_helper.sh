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
# The device clients, each in its own Compose profile (docker-compose.yml), in the order `up` reports them.
CLIENTS=(cpu-pyjoules gpu-nvml jetson-ina3221)
declare -A CLIENT_PROFILE=([cpu-pyjoules]=cpu [gpu-nvml]=gpu [jetson-ina3221]=jetson)

usage() {
  cat <<EOF
Usage: ./$PROG [--print-command] <compose command> [arguments...]
       ./$PROG --help

Runs Docker Compose (\`docker compose\`, else \`docker-compose\`) on docker-compose.yml plus the override for
the configured RAPL access mode. Every command and argument is passed through unchanged, e.g.:

  ./$PROG up -d --build      build the images, start Prometheus, Grafana and the clients this host can run
  ./$PROG ps                 show the services and their health
  ./$PROG logs -f cpu-pyjoules
  ./$PROG down               stop and remove the containers (add -v to delete the data volumes too)

Before \`up\` it checks, and explains what to do when a check fails:
  - the Docker daemon is reachable;
  - which device clients this host can run (each is a Compose profile; \`up\` activates those found through
    COMPOSE_PROFILES and says in one line each which it skips and why):
      cpu-pyjoules (profile cpu)       an x86 host (not arm64) exposing RAPL zones (POWERCAP_HOST_DIR, or
                                       /sys/class/powercap outside mount mode)
      gpu-nvml (profile gpu)           an NVIDIA GPU with its driver, and Docker able to give it to containers
                                       (NVIDIA Container Toolkit)
      jetson-ina3221 (profile jetson)  INA3221 power rails under JETSON_SYSFS_HOST_DIR (/sys): a Jetson
    A client named on the command line must have its hardware (else \`up\` stops and says why). Set
    COMPOSE_PROFILES yourself (e.g. in .env.local) to choose the clients without detection;
  - in AppArmor mode: AppArmor is enabled and the '$PROFILE_NAME' profile is loaded;
  - a Grafana admin password is set; if none is, one is generated into .env.local (mode 600).
  Checks about a client are skipped when the services named on the command line exclude it. Every other
  command sees every client (all profiles active), so \`down\`, \`ps\` and \`logs\` cover them all.

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
  HELPER_NVIDIA_GPUS    where the NVIDIA driver lists the GPUs (/proc/driver/nvidia/gpus)
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
    EXTRA_COMPOSE_FILES JETSON_SYSFS_HOST_DIR COMPOSE_PROFILES; do
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

# Why this host cannot run device client $1, in one line; nothing when it can. (The client containers
# read as uid 0 or as an unprivileged user: a RAPL counter that exists is readable to the container,
# whatever the user running this script may read.)
missing_hardware() {
  local dir zone arch runtimes
  case "$1" in
    cpu-pyjoules)
      arch=$(uname -m)
      case "$arch" in
        x86_64 | amd64 | i?86) ;;
        *) echo "RAPL energy counters exist on x86 CPUs only, and this host is $arch"; return ;;
      esac
      dir=/sys/class/powercap
      [[ "$MODE" == mount ]] && dir=$(conf POWERCAP_HOST_DIR /sys/devices/virtual/powercap)
      for zone in "$dir"/intel-rapl/intel-rapl:*; do
        [[ -e "$zone/energy_uj" ]] && return
      done
      echo "No RAPL zones under $dir (expected $dir/intel-rapl/intel-rapl:0/energy_uj): a virtual machine, or" \
        "the driver is not loaded (on bare-metal Intel/AMD: sudo modprobe intel_rapl_msr)"
      ;;
    gpu-nvml)
      dir=${HELPER_NVIDIA_GPUS:-/proc/driver/nvidia/gpus}
      if ! compgen -G "$dir/*" >/dev/null; then
        echo "no NVIDIA GPU: the NVIDIA driver lists none ($dir)"
        return
      fi
      # Docker gives containers NVIDIA GPUs (driver nvidia) only with the toolkit's hook on its PATH.
      runtimes=$(docker info --format '{{json .Runtimes}}' 2>/dev/null) || runtimes=
      if ! command -v nvidia-container-runtime-hook >/dev/null && [[ "$runtimes" != *'"nvidia"'* ]]; then
        echo "an NVIDIA GPU, but Docker cannot give it to containers: install the NVIDIA Container Toolkit" \
          "(nvidia-ctk runtime configure --runtime=docker, then restart Docker)"
      fi
      ;;
    jetson-ina3221)
      dir=$(conf JETSON_SYSFS_HOST_DIR /sys)
      compgen -G "$dir/bus/i2c/drivers/ina3221/*/hwmon/hwmon*/in[1-3]_input" >/dev/null && return
      compgen -G "$dir/bus/i2c/drivers/ina3221x/*/iio:device*/in_voltage[0-2]_input" >/dev/null && return
      echo "no INA3221 power monitor under $dir/bus/i2c/drivers/ (not an NVIDIA Jetson)"
      ;;
  esac
}

# The device clients `up` starts, as COMPOSE_PROFILES. Without services named, those whose hardware this
# host has, with one line for each skipped; a client named on the command line without its hardware is a
# problem. A COMPOSE_PROFILES of the user's own is kept as it is.
declare -a STARTING=()
PROFILES_CHOSEN=0
choose_clients() {
  local service reason
  local -a profiles=()
  if ((${#UP_SERVICES[@]} == 0)) && [[ -n "$(conf COMPOSE_PROFILES)" ]]; then
    for service in "${CLIENTS[@]}"; do
      [[ ",$(conf COMPOSE_PROFILES)," == *",${CLIENT_PROFILE[$service]},"* ]] && STARTING+=("$service")
    done
    echo "$PROG: COMPOSE_PROFILES=$(conf COMPOSE_PROFILES) is set: starting what it names, hardware not checked" >&2
    return
  fi
  for service in "${CLIENTS[@]}"; do
    starts_service "$service" || continue
    reason=$(missing_hardware "$service")
    if [[ -z "$reason" ]]; then
      STARTING+=("$service")
      profiles+=("${CLIENT_PROFILE[$service]}")
    elif ((${#UP_SERVICES[@]})); then
      problem "$service cannot run on this host: $reason."
    else
      echo "$PROG: not starting $service: $reason" >&2
    fi
  done
  if ((${#UP_SERVICES[@]} == 0)); then
    conf_set COMPOSE_PROFILES "$(IFS=,; echo "${profiles[*]}")"
    PROFILES_CHOSEN=1
    echo "$PROG: device clients for this host: ${STARTING[*]:-none} (COMPOSE_PROFILES=$(conf COMPOSE_PROFILES))" >&2
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
  choose_clients
  if [[ "$MODE" == apparmor ]] && { [[ " ${STARTING[*]} " == *" $CLIENT_SERVICE "* ]] ||
    { ((${#UP_SERVICES[@]})) && starts_service "$CLIENT_SERVICE"; }; }; then
    check_apparmor
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
  # Every other command (and `up` of named services) sees every device client.
  if [[ -z "$(conf COMPOSE_PROFILES)" ]] && ((!PROFILES_CHOSEN)); then
    local service
    local -a all=()
    for service in "${CLIENTS[@]}"; do all+=("${CLIENT_PROFILE[$service]}"); done
    conf_set COMPOSE_PROFILES "$(IFS=,; echo "${all[*]}")"
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
    echo "# profiles: COMPOSE_PROFILES=$(conf COMPOSE_PROFILES)"
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
        [[ " ${CLIENTS[*]} " == *" $arg "* ]] && return 0
      done
      return 1
      ;;
    up | create)
      if [[ "$command" == up ]] && ((${#STARTING[@]} == 0)); then
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
