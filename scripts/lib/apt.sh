# Debian packages for the setup scripts (sourced, not run): what is missing, and installing it.
export DEBIAN_FRONTEND=noninteractive
APT="apt-get -y -q -o DPkg::Lock::Timeout=600"

# apt_missing PKG...: the names of those not installed, one per line.
apt_missing() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || echo "$pkg"
  done
}

# apt_install [--no-start] PKG...: install PKG (nothing when none is given). --no-start: their maintainer
# scripts may not start a service (a policy-rc.d answering 101 while they run), for servers the project runs
# itself on private ports or per namespace.
apt_install() {
  local no_start=0
  if [ "${1:-}" = --no-start ]; then
    no_start=1
    shift
  fi
  (($#)) || return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "${0##*/}: installing $* needs root" >&2
    return 1
  fi
  local policy=/usr/sbin/policy-rc.d created=0
  if [ "$no_start" = 1 ] && [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created=1
  fi
  local rc=0
  { $APT update && $APT install --no-install-recommends "$@"; } || rc=$?
  if [ "$created" = 1 ]; then rm -f "$policy"; fi
  return "$rc"
}
