# Sourced by scripts/serve and scripts/test: install missing Debian packages, then make ./.venv.
# Usage: ensure_debian_packages "command:package" ...; ensure_venv PIP_INSTALL_ARGS...

ensure_debian_packages() {
  local missing=() probe
  for probe in "$@"; do
    command -v "${probe%%:*}" >/dev/null 2>&1 || missing+=("${probe##*:}")
  done
  python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "Installing Debian packages: ${missing[*]}" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
}

ensure_venv() {
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q "$@"
}
