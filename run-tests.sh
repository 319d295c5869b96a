#!/usr/bin/env bash
# The one test command: installs what the tests need, checks lint, format and types, then runs every test.
#
#   ./run-tests.sh                     # everything (checks, unit, integration with a real Prometheus, Docker e2e)
#   ./run-tests.sh -m 'not e2e' -x     # any extra arguments go to pytest
#   SKIP_CHECKS=1 ./run-tests.sh tests/reliability   # while iterating: pytest only (CI never sets it)
#
# What it installs, and only when missing:
#   - system packages (as root, through apt-get): prometheus (real server for integration tests, promtool
#     for the alerting rules), victoria-metrics (the other receiver the client and energy-report are tested against, and the
#     stack's growth path, with vmauth), openssl
#     (certificates for the TLS tests and the protected stack),
#     docker.io + docker-compose + debootstrap (end-to-end stack test), apparmor (profile syntax check),
#     qemu-user-static + binfmt-support (the client images built for arm64 in the end-to-end test: it
#     registers qemu-aarch64 in binfmt_misc); without root it installs nothing system-wide and the tests
#     that need those tools skip with a reason;
#   - a virtual environment in .venv with every package of PACKAGES (editable) and the test requirements.
#
# Checks, before pytest, each failing the run on any finding: `ruff check .` and `ruff format --check .`
# (one configuration: ruff.toml), and `mypy --strict` on every package of PACKAGES (its [tool.mypy]
# section in its pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")"

# The repository's Python packages: one directory each, with a pyproject.toml and its importable package
# either directly inside (flat layout) or under src/. A new package is one more word here (and its tests in
# pytest.ini's testpaths).
PACKAGES=(base-monitoring-client cpu-pyjoules gpu-nvml jetson-ina3221 energy-report testkit)

log() { printf '[run-tests] %s\n' "$*"; }

need_pkgs=()
command -v prometheus >/dev/null 2>&1 || need_pkgs+=(prometheus)
command -v victoria-metrics >/dev/null 2>&1 || need_pkgs+=(victoria-metrics)  # second receiver (compatibility tests)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)  # CA and certificates for the TLS tests
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need_pkgs+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
command -v apparmor_parser >/dev/null 2>&1 || need_pkgs+=(apparmor)
command -v cc >/dev/null 2>&1 || need_pkgs+=(gcc libc6-dev)  # compiles gpu-nvml's stand-in libnvidia-ml.so.1
command -v qemu-aarch64-static >/dev/null 2>&1 || need_pkgs+=(qemu-user-static binfmt-support)  # arm64 images
if ((${#need_pkgs[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing system packages: ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  else
    log "not root or no apt-get: not installing ${need_pkgs[*]}; tests needing them will skip and say why"
  fi
fi
# arm64 programs in containers (qemu-user-static's interpreter registered with binfmt_misc), where the
# kernel allows it; otherwise the arm64 image test skips and says why.
binfmt=/proc/sys/fs/binfmt_misc
if [[ $(id -u) -eq 0 && ! -e $binfmt/qemu-aarch64 ]] && command -v update-binfmts >/dev/null 2>&1; then
  [[ -e $binfmt/register ]] || mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || true
  update-binfmts --enable qemu-aarch64 2>/dev/null || log "could not register qemu-aarch64 with binfmt_misc"
fi

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  "$python" -m venv .venv
fi
editable=()
for dir in "${PACKAGES[@]}"; do editable+=(-e "./$dir"); done
log "installing Python packages into .venv: ${PACKAGES[*]}"
.venv/bin/python -m pip install -q -r requirements-test.txt "${editable[@]}"

# The importable packages of one project directory: its subdirectories (or src/'s) holding an __init__.py.
import_dirs() {
  local init
  for init in "$1"/*/__init__.py "$1"/src/*/__init__.py; do
    [[ -e $init && $init != */tests/__init__.py ]] && dirname "$init"
  done
  return 0
}

if [[ ${SKIP_CHECKS:-0} != 1 ]]; then
  failed=()
  log "ruff check ."
  .venv/bin/ruff check --quiet . || failed+=("ruff check (fix: .venv/bin/ruff check --fix . and by hand)")
  log "ruff format --check ."
  .venv/bin/ruff format --check --quiet . || failed+=("ruff format (fix: .venv/bin/ruff format .)")
  # mypy resolves imports between the packages through MYPYPATH: the editable installs are import hooks,
  # which mypy does not follow.
  mypy_path=()
  for dir in "${PACKAGES[@]}"; do
    while read -r pkg; do mypy_path+=("$(dirname "$pkg")"); done < <(import_dirs "$dir")
  done
  for dir in "${PACKAGES[@]}"; do
    mapfile -t targets < <(import_dirs "$dir")
    log "mypy --strict ${targets[*]}"
    MYPYPATH=$(IFS=:; echo "${mypy_path[*]}") .venv/bin/mypy --strict --config-file "$dir/pyproject.toml" \
      "${targets[@]}" || failed+=("mypy --strict in $dir")
  done
  if ((${#failed[@]})); then
    for check in "${failed[@]}"; do log "FAILED: $check"; done
    log "the checks above found problems (details printed above each): fix them; pytest was not run"
    exit 1
  fi
fi

log "running pytest $*"
exec .venv/bin/python -m pytest "$@"
