#!/usr/bin/env bash
# docker-compose_helper.sh: run Docker Compose for the power-monitoring stack with the right files, role and
# secrets, and check the host before `up` so that problems are explained in plain words instead of crash loops.
#
# Configuration is read from .env, then .env.local (git-ignored: local overrides and secrets), then the
# process environment (highest precedence, as with Compose itself). The files are parsed (one awk pass,
# linear in their size), never sourced: UID and GID are read-only in bash, and a value must never run as code.
#
# What it hands to Compose besides the settings: COMPOSE_PROFILES from STACK_ROLE, each client's URL, and the
# HELPER_* variables of docker-compose.yml (host files behind the compose secrets, and the paths the
# containers see them at). Secrets reach containers only as files under /run/secrets, never as environment.
set -euo pipefail

HELPER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROG=$(basename "$0")
PROFILE_NAME=docker-pyjoules
CLIENT_SERVICE=cpu-pyjoules
BASE_SERVICE=base-monitoring-client
# The device clients, each in its own Compose profile (docker-compose.yml), in the order `up` reports them.
# Each pushes to CLIENT_<NAME>_URL (e.g. CLIENT_CPU_PYJOULES_URL) and shares the remote-write credentials.
CLIENTS=(cpu-pyjoules gpu-nvml jetson-ina3221)
declare -A CLIENT_PROFILE=([cpu-pyjoules]=cpu [gpu-nvml]=gpu [jetson-ina3221]=jetson)
# The server side: the Compose profile "server".
SERVER_SERVICES=(prometheus grafana victoriametrics)
SECRETS_MOUNT=/run/secrets
# The longest value passed on: Linux limits one environment string to 128 KiB.
MAX_VALUE_BYTES=65536

usage() {
  cat <<EOF
Usage: ./$PROG [--print-command] <compose command> [arguments...]
       ./$PROG --help

Runs Docker Compose (\`docker compose\`, else \`docker-compose\`) on docker-compose.yml plus the override for
the configured RAPL access mode, with the services of the machine's role. Every command and argument is
passed through unchanged, e.g.:

  ./$PROG up -d --build      build the images, start the role's services (the device clients this host can run)
  ./$PROG ps                 show the services and their health
  ./$PROG logs -f cpu-pyjoules
  ./$PROG down               stop and remove the containers (add -v to delete the data volumes too)

Roles (STACK_ROLE in .env; one set of files for all three):
  all-in-one  default: Prometheus, Grafana and the clients on this machine
  server      Prometheus and Grafana only; clients on other machines push to it
  client      the clients only, pushing to REMOTE_WRITE_URL (another machine's server)

Protected server (PROMETHEUS_SECURITY): Prometheus requires basic auth (bcrypt) and TLS whenever BIND_ADDRESS
is not a loopback address, or always with PROMETHEUS_SECURITY=on. The helper then generates, once, the
clients' password into .env.local (PROMETHEUS_AUTH_PASSWORD, mode 600), a local CA and server certificate
with openssl into SECRETS_DIR (or uses PROMETHEUS_TLS_CERT_FILE/KEY_FILE), the bcrypt hash (with Python's
libcrypt inside PYTHON_IMAGE), and prints the CA certificate to copy to client machines.

Before \`up\` it checks, and explains what to do when a check fails:
  - the Docker daemon is reachable;
  - which device clients this host can run (roles all-in-one and client; each is a Compose profile; \`up\`
    activates those found through COMPOSE_PROFILES and says in one line each which it skips and why):
      cpu-pyjoules (profile cpu)       an x86 host (not arm64) exposing RAPL zones (POWERCAP_HOST_DIR, or
                                       /sys/class/powercap outside mount mode)
      gpu-nvml (profile gpu)           an NVIDIA GPU with its driver, and Docker able to give it to containers
                                       (NVIDIA Container Toolkit)
      jetson-ina3221 (profile jetson)  INA3221 power rails under JETSON_SYSFS_HOST_DIR (/sys): a Jetson
    A client named on the command line must have its hardware (else \`up\` stops and says why). Set
    COMPOSE_PROFILES yourself (e.g. in .env.local) to choose the clients without detection;
  - in AppArmor mode: AppArmor is enabled and the '$PROFILE_NAME' profile is loaded;
  - a Grafana admin password is set; if none is, one is generated into .env.local (mode 600);
  - a client-only machine knows where to push (REMOTE_WRITE_URL) and its credential files exist.
  Checks about a service are skipped when the role or the services named on the command line exclude it.
  Every other command sees every service of the role (all its profiles), so \`down\`, \`ps\` and \`logs\`
  cover them all.

RAPL access modes (RAPL_ACCESS in .env; PRIVILEGED=True/true/1/yes forces privileged):
  mount       default: the host's powercap tree bind-mounted read-only, all capabilities dropped
  apparmor    reads /sys/class/powercap under AppArmor profile '$PROFILE_NAME' (adds docker-compose.apparmor.yml)
  privileged  privileged container reading /sys/class/powercap (adds docker-compose.privileged.yml)

Options:
  --print-command   run the checks, then print the compose command instead of running it (writes nothing)
  -h, --help        this help

Environment:
  EXTRA_COMPOSE_FILES   colon-separated extra compose files appended after the mode's files
                        (e.g. docker-compose.victoriametrics.yml)
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

say() { echo "$PROG: $*" >&2; }

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

# The dotenv grammar, as one awk program (bash's own pattern operators are quadratic on long lines): KEY=VALUE
# lines; blank lines and '#' comments ignored; a UTF-8 byte-order mark and CR line ends ignored; optional
# 'export '; spaces around the key and '=' ignored; "double" or 'single' quoted values taken verbatim (no
# expansion; \" and \\ unescaped in double quotes); an unquoted value ends before ' #' and loses surrounding
# spaces. Prints "V<US>KEY<US>VALUE" per assignment, or "E<US>LINE<US>MESSAGE" and stops at the first error.
# No message ever contains a value.
# shellcheck disable=SC2016 # awk's own $ fields
ENV_AWK='
function fail(msg) { printf "E%s%d%s%s\n", US, NR, US, msg; exit 0 }
BEGIN { US = sprintf("%c", 31); BOM = sprintf("%c%c%c", 239, 187, 191) }
{
  line = $0
  if (NR == 1 && substr(line, 1, 3) == BOM) line = substr(line, 4)
  if (substr(line, length(line), 1) == "\r") line = substr(line, 1, length(line) - 1)
  sub(/^[ \t]+/, "", line)
  if (line == "" || substr(line, 1, 1) == "#") next
  if (index(line, US)) fail("a control character (0x1f) on this line; remove it")
  if (match(line, /^export[ \t]+/)) line = substr(line, RLENGTH + 1)
  eq = index(line, "=")
  if (eq == 0) fail("no \"=\" on this line: expected KEY=VALUE (the line is not shown, it may hold a secret)")
  key = substr(line, 1, eq - 1)
  value = substr(line, eq + 1)
  if (match(key, /[ \t]+$/)) key = substr(key, 1, RSTART - 1)
  if (key !~ /^[A-Za-z_][A-Za-z0-9_]*$/) {
    shown = (length(key) <= 64 && key ~ /^[ -~]*$/) ? "\"" key "\"" : "the name before \"=\""
    fail(shown " is not a valid variable name (letters, digits and _, not starting with a digit)")
  }
  if (match(value, /^[ \t]+/)) value = substr(value, RLENGTH + 1)
  c = substr(value, 1, 1)
  if (c == "\"") {
    if (value !~ /^"([^"\\]|\\.)*"[ \t]*(#.*)?$/) fail("unterminated double quote in the value of " key)
    match(value, /^"([^"\\]|\\.)*"/)
    value = substr(value, 2, RLENGTH - 2)
    gsub(/\\"/, "\"", value)
    gsub(/\\\\/, "\\", value)
  } else if (c == "\047") {
    if (value !~ /^\047[^\047]*\047[ \t]*(#.*)?$/) fail("unterminated single quote in the value of " key)
    value = substr(value, 2, index(substr(value, 2), "\047") - 1)
  } else if (c == "#") {
    value = ""
  } else {
    if (match(value, /[ \t]#/)) value = substr(value, 1, RSTART)
    if (match(value, /[ \t]+$/)) value = substr(value, 1, RSTART - 1)
  }
  if (length(value) > MAX) fail("the value of " key " is " length(value) " bytes long; at most " MAX " can be passed on")
  printf "V%s%s%s%s\n", US, key, US, value
}'

parse_env_file() {
  local file=$1 tag first rest parsed
  [[ -f "$file" ]] || return 0
  [[ -r "$file" ]] || die_env "$file: cannot read it (permissions); fix its owner or mode"
  # Run to completion first, so that an awk failure is seen (a process substitution's status is not).
  parsed=$(LC_ALL=C awk -v MAX="$MAX_VALUE_BYTES" "$ENV_AWK" "$file") || die_env "$file: awk could not read it"
  while IFS=$'\x1f' read -r tag first rest; do
    case $tag in
      V) conf_set "$first" "$rest" ;;
      E) die "$file:$first: $rest" ;;
    esac
  done <<<"$parsed"
}

load_config() {
  parse_env_file "$HELPER_DIR/.env"
  parse_env_file "$HELPER_DIR/.env.local"
  # The environment wins, as it does for Compose. `printenv` reads the real environment, so bash's own
  # unexported UID variable does not override GID/UID from the files.
  local key value
  for key in "${CONF_KEYS[@]}" GF_SECURITY_ADMIN_PASSWORD HOST_LABEL POWERCAP_HOST_DIR RAPL_ACCESS PRIVILEGED \
    EXTRA_COMPOSE_FILES STACK_ROLE PROMETHEUS_SECURITY PROMETHEUS_AUTH_PASSWORD REMOTE_WRITE_URL \
    REMOTE_WRITE_USERNAME REMOTE_WRITE_PASSWORD REMOTE_WRITE_PASSWORD_FILE REMOTE_WRITE_BEARER_TOKEN \
    REMOTE_WRITE_BEARER_TOKEN_FILE REMOTE_WRITE_CA_FILE REMOTE_WRITE_CERT_FILE REMOTE_WRITE_KEY_FILE \
    REMOTE_WRITE_HEADERS JETSON_SYSFS_HOST_DIR COMPOSE_PROFILES; do
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

# A path from the configuration: relative ones are relative to the stack directory, like Compose's.
conf_path() {
  local path
  path=$(conf "$@")
  [[ -z "$path" || "$path" == /* ]] && printf '%s' "$path" || printf '%s/%s' "$HELPER_DIR" "${path#./}"
}

# ---------------------------------------------------------------------------------------------------
# Compose command, mode, role and files
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

# The role decides which side runs here: "server" (the Compose profile of Prometheus and Grafana) and/or
# "client" (the device clients, each in its own profile).
ROLE=
declare -a SIDES=()
stack_role() {
  ROLE=$(conf STACK_ROLE all-in-one)
  ROLE=${ROLE,,}
  case "$ROLE" in
    all-in-one) SIDES=(server client) ;;
    server) SIDES=(server) ;;
    client) SIDES=(client) ;;
    *) die "STACK_ROLE='$ROLE' is invalid: expected all-in-one, server or client (see .env)" ;;
  esac
}

role_has() {
  [[ " ${SIDES[*]} " == *" $1 "* ]]
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
# Services started by `up`
# ---------------------------------------------------------------------------------------------------
# Services named after `up` and its options; empty means "all of the role's".
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

profile_of() {
  local s
  for s in "${SERVER_SERVICES[@]}"; do
    [[ "$s" == "$1" ]] && echo server && return
  done
  echo client
}

starts_service() {
  local name=$1 s
  role_has "$(profile_of "$name")" || return 1
  ((${#UP_SERVICES[@]} == 0)) && return 0
  for s in "${UP_SERVICES[@]}"; do
    [[ "$s" == "$name" ]] && return 0
  done
  return 1
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
DEVICE_PROFILES=
choose_clients() {
  local service reason
  local -a profiles=()
  if ((${#UP_SERVICES[@]} == 0)) && [[ -n "$(conf COMPOSE_PROFILES)" ]]; then
    for service in "${CLIENTS[@]}"; do
      [[ ",$(conf COMPOSE_PROFILES)," == *",${CLIENT_PROFILE[$service]},"* ]] && STARTING+=("$service")
    done
    echo "$PROG: COMPOSE_PROFILES=$(conf COMPOSE_PROFILES) is set: starting what it names, hardware not checked" >&2
    DEVICE_PROFILES=$(user_device_profiles)
    PROFILES_CHOSEN=1
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
    DEVICE_PROFILES=$(IFS=,; echo "${profiles[*]}")
    PROFILES_CHOSEN=1
    echo "$PROG: device clients for this host: ${STARTING[*]:-none} (COMPOSE_PROFILES=$(compose_profiles))" >&2
  fi
}

# ---------------------------------------------------------------------------------------------------
# Protected server: basic auth and TLS for Prometheus's write and query endpoints
# ---------------------------------------------------------------------------------------------------
SECURE=0
SECRETS_ROOT=
declare -a WOULD=() # what --print-command would generate
declare -a NOTES=() # printed after the checks pass

is_loopback() {
  case "$1" in
    "" | localhost | 127.* | ::1 | "[::1]") return 0 ;;
    *) return 1 ;;
  esac
}

server_security() {
  SECRETS_ROOT=$(conf_path SECRETS_DIR secrets)
  role_has server || return 0
  local setting bind
  setting=$(conf PROMETHEUS_SECURITY auto)
  bind=$(conf BIND_ADDRESS 127.0.0.1)
  case "${setting,,}" in
    on) SECURE=1 ;;
    auto) is_loopback "$bind" || SECURE=1 ;;
    *) die "PROMETHEUS_SECURITY='$setting' is invalid: expected auto (protected when BIND_ADDRESS is not loopback) or on" ;;
  esac
  local user name
  user=$(conf PROMETHEUS_AUTH_USERNAME powermon)
  [[ "$user" =~ ^[A-Za-z0-9._-]+$ ]] ||
    die "PROMETHEUS_AUTH_USERNAME='$user' is invalid: expected letters, digits, '.', '_' or '-'"
  name=$(conf PROMETHEUS_TLS_SERVER_NAME prometheus)
  [[ "$name" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] ||
    die "PROMETHEUS_TLS_SERVER_NAME='$name' is invalid: expected a DNS name such as metrics.example.org"
  local own_cert own_key
  own_cert=$(conf PROMETHEUS_TLS_CERT_FILE)
  own_key=$(conf PROMETHEUS_TLS_KEY_FILE)
  if [[ -n "$own_cert" || -n "$own_key" ]] && [[ -z "$own_cert" || -z "$own_key" ]]; then
    die "PROMETHEUS_TLS_CERT_FILE and PROMETHEUS_TLS_KEY_FILE go together: set both (your own certificate) or neither (a generated one)"
  fi
}

# The files under SECRETS_DIR: the directory is private (700), the files in it readable (644) because the
# containers read them as other users (Prometheus as nobody, Grafana as 472, cap-less root in the clients);
# the CA's private key stays 600 and is never mounted. Files are rewritten in place (same inode), so a
# running container's bind mount sees the new content: a changed password reaches a client without a restart.
ensure_secrets_dir() {
  (umask 077 && mkdir -p "$1") || die_env "cannot create $1 (SECRETS_DIR); is its parent writable?"
  chmod 700 "$1"
}

write_in_place() { # write_in_place FILE MODE: stdin to FILE, only if the content differs
  local file=$1 mode=$2 tmp
  tmp=$(mktemp "$SECRETS_ROOT/.tmp.XXXXXX")
  cat >"$tmp"
  if [[ ! -f "$file" ]] || ! cmp -s "$tmp" "$file"; then
    : >>"$file"
    chmod "$mode" "$file"
    cat "$tmp" >"$file"
  else
    chmod "$mode" "$file"
  fi
  rm -f "$tmp"
}

need_openssl() {
  command -v openssl >/dev/null 2>&1 ||
    die_env "openssl is not installed, and a protected Prometheus needs a certificate: install it (e.g. 'sudo apt-get install openssl'), or set PROMETHEUS_TLS_CERT_FILE and PROMETHEUS_TLS_KEY_FILE to your own"
}

openssl_quiet() {
  local out
  out=$(openssl "$@" 2>&1) || die_env "openssl $1 failed: ${out##*$'\n'}"
}

# Names a client may use to reach this server: the compose service, the configured server name, this host's
# names, BIND_ADDRESS when it is a specific address, and PROMETHEUS_TLS_NAMES (comma-separated).
certificate_names() {
  local -a names=(DNS:prometheus DNS:localhost IP:127.0.0.1)
  local bind extra item short full
  names+=("DNS:$(conf PROMETHEUS_TLS_SERVER_NAME prometheus)")
  short=$(hostname 2>/dev/null || true)
  full=$(hostname -f 2>/dev/null || true)
  for item in "$short" "$full"; do
    [[ "$item" =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]] && names+=("DNS:$item")
  done
  bind=$(conf BIND_ADDRESS 127.0.0.1)
  if [[ "$bind" =~ ^[0-9]+(\.[0-9]+){3}$ && -n "${bind//[0.]/}" ]]; then # a specific address, not "all"
    names+=("IP:$bind")
  fi
  extra=$(conf PROMETHEUS_TLS_NAMES)
  local -a extras=()
  IFS=, read -r -a extras <<<"$extra"
  for item in "${extras[@]}"; do
    item=${item//[[:space:]]/}
    [[ -n "$item" ]] || continue
    if [[ "$item" =~ ^[0-9]+(\.[0-9]+){3}$ || "$item" == *:* ]]; then
      names+=("IP:$item")
    elif [[ "$item" =~ ^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
      names+=("DNS:$item")
    else
      die "PROMETHEUS_TLS_NAMES has '$item', which is neither a host name nor an IP address"
    fi
  done
  printf '%s\n' "${names[@]}" | awk '!seen[$0]++' | paste -sd, -
}

# A local CA (kept for 10 years, its key never leaves SECRETS_DIR) and a server certificate it signs for
# every name above (renewed when the names change, the CA changes or it has less than 30 days left).
generate_certificates() {
  local dir=$SECRETS_ROOT names
  need_openssl
  names=$(certificate_names)
  local ca_crt=$dir/ca.crt ca_key=$dir/ca.key crt=$dir/prometheus.crt key=$dir/prometheus.key
  local renew=0
  if [[ ! -s "$ca_crt" || ! -s "$ca_key" ]] || ! openssl x509 -checkend 2592000 -noout -in "$ca_crt" >/dev/null 2>&1; then
    (umask 077 && openssl_quiet req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=power-monitoring local CA $(hostname 2>/dev/null || echo)" -keyout "$ca_key.new" -out "$ca_crt.new" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign)
    mv "$ca_key.new" "$ca_key"
    chmod 600 "$ca_key"
    write_in_place "$ca_crt" 644 <"$ca_crt.new"
    rm -f "$ca_crt.new"
    renew=1
    say "generated a local CA: $ca_crt (copy this certificate to client machines; its key stays in $dir)"
  fi
  if ((renew)) || [[ ! -s "$crt" || ! -s "$key" ]] || [[ "$(cat "$dir/prometheus.names" 2>/dev/null)" != "$names" ]] ||
    ! openssl x509 -checkend 2592000 -noout -in "$crt" >/dev/null 2>&1; then
    local ext=$dir/.prometheus.ext
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n' \
      "$names" >"$ext"
    (umask 077 && openssl_quiet req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=prometheus \
      -keyout "$key.new" -out "$dir/.prometheus.csr")
    openssl_quiet x509 -req -in "$dir/.prometheus.csr" -CA "$ca_crt" -CAkey "$ca_key" -CAcreateserial \
      -CAserial "$dir/.ca.srl" -days 825 -extfile "$ext" -out "$crt.new"
    write_in_place "$key" 644 <"$key.new"
    write_in_place "$crt" 644 <"$crt.new"
    rm -f "$key.new" "$crt.new" "$dir/.prometheus.csr" "$ext"
    printf '%s\n' "$names" >"$dir/prometheus.names"
    say "generated Prometheus's TLS certificate for ${names//DNS:/} (add names with PROMETHEUS_TLS_NAMES)"
  fi
}

# Whether a certificate names a host among its subjectAltName DNS entries (a wildcard covers one label), as
# Go and Python check it: the subject's CN does not count.
cert_has_name() { # cert_has_name FILE NAME
  local sans entry
  need_openssl
  sans=$(openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null) || return 1
  for entry in ${sans//,/ }; do
    [[ "$entry" == "DNS:$2" || ("$entry" == DNS:\*.* && "${entry#DNS:\*}" == ".${2#*.}") ]] && return 0
  done
  return 1
}

# The user's own certificate: copied into SECRETS_DIR so that the containers can read it whatever its
# owner and mode on the host; PROMETHEUS_TLS_CA_FILE is the CA to hand to Grafana and the clients (empty:
# a certificate from a public CA, which the containers already trust).
stage_own_certificates() {
  local setting file
  for setting in PROMETHEUS_TLS_CERT_FILE PROMETHEUS_TLS_KEY_FILE PROMETHEUS_TLS_CA_FILE; do
    file=$(conf_path "$setting")
    [[ -z "$file" || -r "$file" ]] || die "$setting='$file': no such readable file"
  done
  cert_has_name "$(conf_path PROMETHEUS_TLS_CERT_FILE)" "$(conf PROMETHEUS_TLS_SERVER_NAME prometheus)" ||
    die "PROMETHEUS_TLS_CERT_FILE has no subjectAltName DNS:$(conf PROMETHEUS_TLS_SERVER_NAME prometheus): set PROMETHEUS_TLS_SERVER_NAME to a name in that certificate (Grafana and this machine's clients reach Prometheus under it)"
  write_in_place "$SECRETS_ROOT/prometheus.crt" 644 <"$(conf_path PROMETHEUS_TLS_CERT_FILE)"
  write_in_place "$SECRETS_ROOT/prometheus.key" 644 <"$(conf_path PROMETHEUS_TLS_KEY_FILE)"
  if [[ -n "$(conf PROMETHEUS_TLS_CA_FILE)" ]]; then
    write_in_place "$SECRETS_ROOT/own-ca.crt" 644 <"$(conf_path PROMETHEUS_TLS_CA_FILE)"
  fi
}

# bcrypt, without asking anything of the host: Python's ctypes calls crypt(3) of libxcrypt (libcrypt.so.1,
# which makes $2b$ hashes) inside PYTHON_IMAGE, the pinned image the client images are built from. The
# password goes in on stdin, never in an argument; the container has no network and no capabilities.
BCRYPT_PY='
import ctypes, sys
lib = ctypes.CDLL("libcrypt.so.1")
lib.crypt_gensalt.restype = ctypes.c_char_p
lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
lib.crypt.restype = ctypes.c_char_p
lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
salt = lib.crypt_gensalt(b"$2b$", 10, None, 0)
hashed = lib.crypt(sys.stdin.buffer.read(), salt) if salt else None
if not hashed or not hashed.startswith(b"$2b$"):
    sys.exit("libcrypt in this image cannot make bcrypt hashes")
print(hashed.decode())
'

bcrypt_hash() { # password on stdin, hash on stdout
  local image out
  image=$(conf PYTHON_IMAGE python:3.11.13-slim-bookworm)
  if ! out=$(docker run --rm -i --network none --read-only --cap-drop ALL --security-opt no-new-privileges \
    --user 65534:65534 "$image" python3 -c "$BCRYPT_PY" 2>&1); then
    die_env "could not make the bcrypt hash of the Prometheus password in $image (PYTHON_IMAGE): ${out##*$'\n'}"
  fi
  [[ "$out" =~ ^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$ ]] ||
    die_env "PYTHON_IMAGE ($image) printed no bcrypt hash; use a Debian-based Python image such as the default"
  printf '%s' "$out"
}

# Passwords generated when unset (saved to .env.local by save_generated_passwords): the Grafana admin's,
# and PROMETHEUS_AUTH_PASSWORD, which clients and Grafana use on a protected Prometheus.
declare -a GENERATED=()
generate_if_unset() {
  [[ -n "$(conf "$1")" ]] && return 0
  conf_set "$1" "$(random_password)"
  GENERATED+=("$1")
}

generated() {
  [[ " ${GENERATED[*]} " == *" $1 "* ]]
}

random_password() {
  local password
  password=$(LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32) || true
  [[ ${#password} -eq 32 ]] || die_env "could not generate a password from /dev/urandom"
  printf '%s' "$password"
}

# The web config Prometheus reads (on every request, so a new password needs no restart): the user with its
# bcrypt hash, made again only when the user or password changed (a salted fingerprint says which).
write_web_config() {
  local user password fingerprint hash web=$SECRETS_ROOT/prometheus-web.yml
  user=$(conf PROMETHEUS_AUTH_USERNAME powermon)
  password=$(conf PROMETHEUS_AUTH_PASSWORD)
  printf '%s' "$password" | write_in_place "$SECRETS_ROOT/prometheus-password" 644
  fingerprint=$(printf 'powermon-web-config\0%s\0%s' "$user" "$password" | sha256sum | cut -d' ' -f1)
  if [[ ! -s "$web" || "$(cat "$SECRETS_ROOT/prometheus-web.sha256" 2>/dev/null)" != "$fingerprint" ]]; then
    hash=$(printf '%s' "$password" | bcrypt_hash)
    write_in_place "$web" 644 <<EOF
# Written by $PROG: Prometheus's --web.config.file (basic auth and TLS); edit .env/.env.local, not this.
# Paths are relative to this file's directory (/run/secrets in the container).
tls_server_config:
  cert_file: prometheus_tls_cert
  key_file: prometheus_tls_key
basic_auth_users:
  $user: $hash
EOF
    printf '%s\n' "$fingerprint" >"$SECRETS_ROOT/prometheus-web.sha256"
  fi
}

prepare_server_secrets() {
  local name scheme=http
  name=$(conf PROMETHEUS_TLS_SERVER_NAME prometheus)
  if ((SECURE)); then
    scheme=https
    HELPER_VARS[HELPER_PROMETHEUS_SECURE]=true
  fi
  HELPER_VARS[HELPER_PROMETHEUS_URL]=$scheme://$name:9090
  ((SECURE)) || return 0
  HELPER_VARS[HELPER_SECRET_PROMETHEUS_WEB_CONFIG]=$SECRETS_ROOT/prometheus-web.yml
  HELPER_VARS[HELPER_SECRET_PROMETHEUS_PASSWORD]=$SECRETS_ROOT/prometheus-password
  HELPER_VARS[HELPER_SECRET_PROMETHEUS_TLS_CERT]=$SECRETS_ROOT/prometheus.crt
  HELPER_VARS[HELPER_SECRET_PROMETHEUS_TLS_KEY]=$SECRETS_ROOT/prometheus.key
  local own=0
  if [[ -n "$(conf PROMETHEUS_TLS_CERT_FILE)" ]]; then
    own=1
    [[ -z "$(conf PROMETHEUS_TLS_CA_FILE)" ]] || HELPER_VARS[HELPER_SECRET_PROMETHEUS_CA]=$SECRETS_ROOT/own-ca.crt
  else
    HELPER_VARS[HELPER_SECRET_PROMETHEUS_CA]=$SECRETS_ROOT/ca.crt
  fi
  if ((!WRITE)); then
    if ((PRINT_ONLY)); then
      WOULD+=("protect Prometheus with basic auth and TLS; secrets in $SECRETS_ROOT")
      [[ -n "$(conf PROMETHEUS_AUTH_PASSWORD)" ]] || WOULD+=("generate PROMETHEUS_AUTH_PASSWORD into $HELPER_DIR/.env.local")
    fi
    return 0
  fi
  ensure_secrets_dir "$SECRETS_ROOT"
  generate_if_unset PROMETHEUS_AUTH_PASSWORD
  if ((own)); then
    stage_own_certificates
  else
    generate_certificates
  fi
  write_web_config
  local bind port ca=${HELPER_VARS[HELPER_SECRET_PROMETHEUS_CA]:-}
  bind=$(conf BIND_ADDRESS 127.0.0.1)
  port=$(conf PROMETHEUS_PORT 9090)
  NOTES+=("Prometheus requires basic auth and TLS (PROMETHEUS_SECURITY=$(conf PROMETHEUS_SECURITY auto), BIND_ADDRESS=$bind).
  CA certificate to copy to client machines: ${ca:-(your certificate is from a public CA: none needed)}
  Client machines need in their .env.local: STACK_ROLE=client,
  REMOTE_WRITE_URL=https://<this server's name or address>:$port/api/v1/write,
  REMOTE_WRITE_USERNAME=$(conf PROMETHEUS_AUTH_USERNAME powermon), REMOTE_WRITE_PASSWORD=<PROMETHEUS_AUTH_PASSWORD in $HELPER_DIR/.env.local>,
  REMOTE_WRITE_CA_FILE=<their copy of the CA certificate>")
}

# ---------------------------------------------------------------------------------------------------
# Clients: where they push and with which credentials
# ---------------------------------------------------------------------------------------------------
# Each client's URL: its CLIENT_<NAME>_URL, else REMOTE_WRITE_URL, else (with a local server) the stack's own
# Prometheus. When every client pushes to the local server they get its credentials and CA; otherwise the
# REMOTE_WRITE_* settings (one set for all the clients of a machine).
OWN_SERVER=0
resolve_client_urls() { # resolve_client_urls COMMAND
  local service var url shared own
  shared=$(conf REMOTE_WRITE_URL)
  own=${HELPER_VARS[HELPER_PROMETHEUS_URL]:-http://prometheus:9090}/api/v1/write
  if [[ -z "$shared" ]] && role_has server; then
    OWN_SERVER=1
  fi
  for service in "${CLIENTS[@]}"; do
    var=CLIENT_${service^^}_URL
    var=${var//-/_}
    url=$(conf "$var")
    if [[ -n "$url" && "$url" != "$own" ]]; then
      OWN_SERVER=0 # the server's password goes to the server only: this client uses the REMOTE_WRITE_* settings
    fi
    [[ -n "$url" ]] || url=$shared
    if [[ -z "$url" ]]; then
      if ! role_has server; then
        if ! starts_service "$service" || ! { ((WRITE || PRINT_ONLY)) || [[ "$1" == config ]]; }; then
          continue
        fi
        die "STACK_ROLE=client needs the server's address: set REMOTE_WRITE_URL (e.g. https://metrics.example.org:9090/api/v1/write) in .env.local"
      fi
      url=$own
    fi
    if ((SECURE)) && [[ "$url" == http://prometheus:* || "$url" == "http://$(conf PROMETHEUS_TLS_SERVER_NAME prometheus):"* ]]; then
      die "$var='$url' uses plain HTTP, but this stack's Prometheus requires TLS: use $own, or leave $var empty"
    fi
    conf_set "$var" "$url"
  done
}

# A client secret: the value of VAR (written to a file) or the file VAR_FILE names (copied), staged under
# SECRETS_DIR/client so the client, root without capabilities, can read it whatever its owner on the host.
stage_client_secret() { # stage_client_secret SETTING STAGED_NAME SECRET_NAME
  local setting=$1 staged=$SECRETS_ROOT/client/$2 secret=$3 value file
  value=$(conf "$setting")
  file=$(conf_path "${setting}_FILE")
  if [[ -n "$value" && -n "$file" ]]; then
    die "$setting and ${setting}_FILE are both set: keep one (the file is preferred: it is re-read when it changes)"
  fi
  [[ -n "$value" || -n "$file" ]] || return 1
  [[ -z "$file" || -r "$file" ]] || die "${setting}_FILE='$file': no such readable file"
  if ((!WRITE)); then
    ((!PRINT_ONLY)) || WOULD+=("stage $setting for the clients into $staged")
  else
    ensure_secrets_dir "$SECRETS_ROOT"
    ensure_secrets_dir "$SECRETS_ROOT/client"
    if [[ -n "$value" ]]; then
      printf '%s' "$value" | write_in_place "$staged" 644
    else
      write_in_place "$staged" 644 <"$file"
    fi
  fi
  HELPER_VARS[HELPER_SECRET_$secret]=$staged
  HELPER_VARS[HELPER_${secret}_FILE]=$SECRETS_MOUNT/${secret,,}
  return 0
}

stage_client_file() { # stage_client_file SETTING STAGED_NAME SECRET_NAME: a certificate or key file
  local setting=$1 staged=$SECRETS_ROOT/client/$2 secret=$3 file
  file=$(conf_path "$setting")
  [[ -n "$file" ]] || return 1
  [[ -r "$file" ]] || die "$setting='$file': no such readable file"
  if ((!WRITE)); then
    ((!PRINT_ONLY)) || WOULD+=("stage $setting for the clients into $staged")
  else
    ensure_secrets_dir "$SECRETS_ROOT"
    ensure_secrets_dir "$SECRETS_ROOT/client"
    write_in_place "$staged" 644 <"$file"
  fi
  HELPER_VARS[HELPER_SECRET_$secret]=$staged
  HELPER_VARS[HELPER_${secret}_FILE]=$SECRETS_MOUNT/${secret,,}
  return 0
}

prepare_client_secrets() {
  role_has client || return 0
  if ((OWN_SERVER)); then
    ((SECURE)) || return 0
    HELPER_VARS[HELPER_REMOTE_WRITE_USERNAME]=$(conf PROMETHEUS_AUTH_USERNAME powermon)
    HELPER_VARS[HELPER_SECRET_REMOTE_WRITE_PASSWORD]=${HELPER_VARS[HELPER_SECRET_PROMETHEUS_PASSWORD]:-$SECRETS_ROOT/prometheus-password}
    HELPER_VARS[HELPER_REMOTE_WRITE_PASSWORD_FILE]=$SECRETS_MOUNT/remote_write_password
    if [[ -n "${HELPER_VARS[HELPER_SECRET_PROMETHEUS_CA]:-}" ]]; then
      HELPER_VARS[HELPER_SECRET_REMOTE_WRITE_CA]=${HELPER_VARS[HELPER_SECRET_PROMETHEUS_CA]}
      HELPER_VARS[HELPER_REMOTE_WRITE_CA_FILE]=$SECRETS_MOUNT/remote_write_ca
    fi
    return 0
  fi
  local user has_password=0 has_token=0
  user=$(conf REMOTE_WRITE_USERNAME)
  stage_client_secret REMOTE_WRITE_PASSWORD password REMOTE_WRITE_PASSWORD && has_password=1
  stage_client_secret REMOTE_WRITE_BEARER_TOKEN bearer-token REMOTE_WRITE_BEARER_TOKEN && has_token=1
  if ((has_password)) && [[ -z "$user" ]]; then
    die "REMOTE_WRITE_PASSWORD is set without REMOTE_WRITE_USERNAME: set the user name too (basic auth)"
  fi
  if ((has_token)) && [[ -n "$user" ]]; then
    die "REMOTE_WRITE_USERNAME and REMOTE_WRITE_BEARER_TOKEN are both set: basic auth and a bearer token exclude each other; keep one"
  fi
  HELPER_VARS[HELPER_REMOTE_WRITE_USERNAME]=$user
  stage_client_file REMOTE_WRITE_CA_FILE ca.crt REMOTE_WRITE_CA || true
  local cert key
  cert=$(conf REMOTE_WRITE_CERT_FILE)
  key=$(conf REMOTE_WRITE_KEY_FILE)
  if [[ -n "$cert" || -n "$key" ]] && [[ -z "$cert" || -z "$key" ]]; then
    die "REMOTE_WRITE_CERT_FILE and REMOTE_WRITE_KEY_FILE go together (mutual TLS): set both or neither"
  fi
  stage_client_file REMOTE_WRITE_CERT_FILE client.crt REMOTE_WRITE_CERT || true
  stage_client_file REMOTE_WRITE_KEY_FILE client.key REMOTE_WRITE_KEY || true
}

# ---------------------------------------------------------------------------------------------------
# Checks before `up`
# ---------------------------------------------------------------------------------------------------
declare -a PROBLEMS=()
problem() { PROBLEMS+=("$*"); }

check_docker() {
  local out
  if ! out=$(docker info --format '{{.ServerVersion}}' 2>&1); then
    problem "Docker daemon not reachable (${DOCKER_HOST:-default socket}): ${out##*$'\n'}
    Start it (e.g. 'sudo systemctl start docker'), or give your user access to it
    ('sudo usermod -aG docker \$USER', then log in again), or run this script with sudo."
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

# Generated secrets are appended to .env.local (created mode 600, kept 600), each with a comment saying what
# it is; the values are never printed.
save_generated_passwords() {
  ((${#GENERATED[@]})) || return 0
  local file=$HELPER_DIR/.env.local key what
  (umask 077 && { [[ -e "$file" ]] || : >"$file"; } && chmod 600 "$file")
  for key in "${GENERATED[@]}"; do
    case $key in
      GF_SECURITY_ADMIN_PASSWORD) what="Grafana admin password (user $(conf GRAFANA_ADMIN_USER admin))" ;;
      *) what="password of user $(conf PROMETHEUS_AUTH_USERNAME powermon) for Prometheus (clients and Grafana)" ;;
    esac
    printf '# Generated by %s on %s: %s.\n%s=%s\n' "$PROG" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$what" "$key" \
      "$(conf "$key")" >>"$file"
  done
  if generated GF_SECURITY_ADMIN_PASSWORD; then
    say "no Grafana admin password was set; generated one and saved it in $file (mode 600)."
    say "log in to Grafana as '$(conf GRAFANA_ADMIN_USER admin)' with the password in that file."
  fi
  if generated PROMETHEUS_AUTH_PASSWORD; then
    say "generated the clients' password for Prometheus into $file (PROMETHEUS_AUTH_PASSWORD, mode 600)."
  fi
}

run_up_checks() {
  check_docker
  role_has client && choose_clients
  if [[ "$MODE" == apparmor ]] && { [[ " ${STARTING[*]} " == *" $CLIENT_SERVICE "* ]] ||
    { ((${#UP_SERVICES[@]})) && starts_service "$CLIENT_SERVICE"; }; }; then
    check_apparmor
  fi
  if starts_service grafana; then
    generate_if_unset GF_SECURITY_ADMIN_PASSWORD
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
# Derived values for docker-compose.yml (see its header); unset ones are passed empty, so a value left in
# the caller's environment never leaks into a role that does not set it.
declare -A HELPER_VARS=()
HELPER_VAR_NAMES=(HELPER_PROMETHEUS_SECURE HELPER_PROMETHEUS_URL HELPER_SECRET_PROMETHEUS_WEB_CONFIG
  HELPER_SECRET_PROMETHEUS_TLS_CERT HELPER_SECRET_PROMETHEUS_TLS_KEY HELPER_SECRET_PROMETHEUS_PASSWORD
  HELPER_SECRET_PROMETHEUS_CA HELPER_REMOTE_WRITE_USERNAME HELPER_SECRET_REMOTE_WRITE_PASSWORD
  HELPER_REMOTE_WRITE_PASSWORD_FILE HELPER_SECRET_REMOTE_WRITE_BEARER_TOKEN HELPER_REMOTE_WRITE_BEARER_TOKEN_FILE
  HELPER_SECRET_REMOTE_WRITE_CA HELPER_REMOTE_WRITE_CA_FILE HELPER_SECRET_REMOTE_WRITE_CERT
  HELPER_REMOTE_WRITE_CERT_FILE HELPER_SECRET_REMOTE_WRITE_KEY HELPER_REMOTE_WRITE_KEY_FILE)
SECRET_VALUE_KEYS=(PROMETHEUS_AUTH_PASSWORD REMOTE_WRITE_PASSWORD REMOTE_WRITE_BEARER_TOKEN)
PRINT_ONLY=0
WRITE=0 # 1 when this run creates containers: secrets are generated and staged

# Commands that create containers need the secrets in place; the others only need the same values so that
# Compose resolves the same configuration (`config`, `down`, `ps`, `logs`...).
creates_containers() {
  case "$1" in
    up | create | run | start | restart) return 0 ;;
    *) return 1 ;;
  esac
}

main() {
  while (($#)); do
    case "$1" in
      -h | --help) usage; return 0 ;;
      --print-command) PRINT_ONLY=1; shift ;;
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
  stack_role
  compose_files
  detect_compose
  server_security

  local command=$1
  if [[ "$command" == up ]]; then
    up_services "$@"
  fi
  if creates_containers "$command" && ((!PRINT_ONLY)); then
    WRITE=1
  fi
  if [[ "$command" == up ]]; then
    run_up_checks
    # Compose passes the real hostname to the client as its host label (inside, it would see a container id).
    if [[ -z "$(conf HOST_LABEL)" ]]; then
      conf_set HOST_LABEL "$(hostname)"
    fi
  fi
  prepare_server_secrets
  resolve_client_urls "$command"
  prepare_client_secrets
  conf_set COMPOSE_PROFILES "$(compose_profiles)"

  # Everything from the files goes to Compose through the environment: .env.local and generated values
  # would otherwise be invisible to it. `env` can set UID/GID for the child, which bash itself cannot.
  # Secret values the helper has turned into files are not passed on, not even from its own environment:
  # Compose never needs them.
  local -a assignments=() key
  for key in "${SECRET_VALUE_KEYS[@]}"; do
    assignments+=(-u "$key")
  done
  for key in "${CONF_KEYS[@]}"; do
    [[ " ${SECRET_VALUE_KEYS[*]} " == *" $key "* ]] && continue
    assignments+=("$key=${CONF[$key]}")
  done
  for key in "${HELPER_VAR_NAMES[@]}"; do
    assignments+=("$key=${HELPER_VARS[$key]:-}")
  done

  local -a prebuild=()
  if needs_base_build "$@"; then
    prebuild=("${COMPOSE[@]}" "${FILES[@]}" build "$BASE_SERVICE")
  fi

  if ((PRINT_ONLY)); then
    if generated GF_SECURITY_ADMIN_PASSWORD; then
      echo "# would generate a Grafana password into $HELPER_DIR/.env.local"
    fi
    local line
    for line in "${WOULD[@]}"; do
      echo "# would $line"
    done
    echo "# role: $ROLE"
    echo "# mode: $MODE"
    echo "# profiles: COMPOSE_PROFILES=$(conf COMPOSE_PROFILES)"
    echo "# prometheus: $( ((SECURE)) && echo "basic auth and TLS" || echo "unprotected (loopback only)")"
    if ((${#prebuild[@]})); then
      printf '%q ' "${prebuild[@]}"
      echo
    fi
    printf '%q ' "${COMPOSE[@]}" "${FILES[@]}" "$@"
    echo
    return 0
  fi

  save_generated_passwords
  if ((WRITE)); then
    local note
    for note in "${NOTES[@]}"; do
      say "$note"
    done
  fi
  if ((${#prebuild[@]})); then
    env "${assignments[@]}" "${prebuild[@]}"
  fi
  exec env "${assignments[@]}" "${COMPOSE[@]}" "${FILES[@]}" "$@"
}

# The Compose profiles of this run: "server" for the server roles; for the client roles, the device profiles
# `up` chose (detected, or the user's COMPOSE_PROFILES), and for every other command all of them (or the
# user's), so that `down`, `ps` and `logs` see every client.
user_device_profiles() {
  local -a mine=() profile
  IFS=, read -r -a mine <<<"$(conf COMPOSE_PROFILES)"
  local -a out=()
  for profile in "${mine[@]}"; do
    profile=${profile//[[:space:]]/}
    [[ -n "$profile" && "$profile" != server ]] && out+=("$profile")
  done
  (IFS=,; echo "${out[*]}")
}

compose_profiles() {
  local -a profiles=()
  local service devices
  role_has server && profiles+=(server)
  if role_has client; then
    if ((PROFILES_CHOSEN)); then
      devices=$DEVICE_PROFILES
    elif [[ -n "$(conf COMPOSE_PROFILES)" ]]; then
      devices=$(user_device_profiles)
    else
      local -a all=()
      for service in "${CLIENTS[@]}"; do all+=("${CLIENT_PROFILE[$service]}"); done
      devices=$(IFS=,; echo "${all[*]}")
    fi
    [[ -z "$devices" ]] || profiles+=("$devices")
  fi
  (IFS=,; echo "${profiles[*]}")
}

# The client image is built FROM the base image. Compose v1 builds in dependency order but v2 may build
# in parallel, so the helper builds the base first whenever this command could build a client.
needs_base_build() {
  local command=$1 arg s
  role_has client || return 1
  case "$command" in
    build)
      (($# == 1)) && return 0
      for arg in "${@:2}"; do
        for s in "${CLIENTS[@]}"; do
          [[ "$arg" == "$s" ]] && return 0
        done
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
