#!/usr/bin/env bash
# The one test command: installs what the tests need, then runs every test.
#
#   ./run-tests.sh            # everything (unit, integration with a real Prometheus, Docker end-to-end)
#   ./run-tests.sh -m 'not e2e' -x    # any extra arguments go to pytest
#
# What it installs, and only when missing:
#   - system packages (as root, through apt-get): prometheus (real server for integration tests),
#     docker.io + docker-compose + debootstrap (end-to-end stack test), apparmor (profile syntax check);
#     without root it installs nothing system-wide and the tests that need those tools skip with a reason;
#   - a virtual environment in .venv with both Python packages (editable) and the test requirements.
set -euo pipefail
cd "$(dirname "$0")"

log() { printf '[run-tests] %s\n' "$*"; }

need_pkgs=()
command -v prometheus >/dev/null 2>&1 || need_pkgs+=(prometheus)
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need_pkgs+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
command -v apparmor_parser >/dev/null 2>&1 || need_pkgs+=(apparmor)
command -v cc >/dev/null 2>&1 || need_pkgs+=(gcc libc6-dev)  # compiles gpu-nvml's stand-in libnvidia-ml.so.1
if ((${#need_pkgs[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing system packages: ${need_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  else
    log "not root or no apt-get: not installing ${need_pkgs[*]}; tests needing them will skip and say why"
  fi
fi

python=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv"
  "$python" -m venv .venv
fi
log "installing Python packages into .venv"
.venv/bin/python -m pip install -q -r requirements-test.txt \
  -e './base-monitoring-client[test]' -e ./cpu-pyjoules -e ./gpu-nvml -e ./jetson-ina3221

log "running pytest $*"
exec .venv/bin/python -m pytest "$@"
