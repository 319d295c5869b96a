#!/usr/bin/env bash
# Install and load the "docker-pyjoules" AppArmor profile (needed only for RAPL_ACCESS=apparmor).
#
# Copies the profile next to the system's profiles so it is loaded again at boot, then loads (or
# replaces) it in the kernel now. Run as root:  sudo ./setup_docker-pyjoules.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
profile_name=docker-pyjoules
source_file="$here/$profile_name"
target_dir=${APPARMOR_DIR:-/etc/apparmor.d}

fail() { echo "setup_docker-pyjoules: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (try: sudo $0)"
command -v apparmor_parser >/dev/null 2>&1 || fail "apparmor_parser not found: install the 'apparmor' package first"
[ -f "$source_file" ] || fail "profile file $source_file is missing"

enabled=$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || echo N)
[ "$enabled" = "Y" ] || fail "AppArmor is not enabled in this kernel; use RAPL_ACCESS=mount (the default) instead"

# Refuse to install a broken profile: check the syntax before touching the system.
apparmor_parser -Q -K "$source_file" >/dev/null

install -m 0644 "$source_file" "$target_dir/$profile_name"
apparmor_parser -r -W "$target_dir/$profile_name"

if grep -qx "$profile_name (enforce)" /sys/kernel/security/apparmor/profiles 2>/dev/null; then
  echo "AppArmor profile '$profile_name' installed in $target_dir and loaded (enforce)."
else
  fail "profile installed in $target_dir but not listed as loaded; check 'aa-status'"
fi
