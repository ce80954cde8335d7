#!/usr/bin/env bash
# Set up Hashlens in ./.venv and run it or its tests, on a fresh Debian/Ubuntu machine or any
# machine with Python 3.11+.
#   scripts/dev.sh run    install, then open the window on the default SQLite store (or hashlens ARGS)
#   scripts/dev.sh test   install with test extras, start local PostgreSQL/MariaDB if present, run pytest
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv

system_packages() {
  # Qt needs these libraries and a font to draw text offscreen; only root can install them.
  # Arguments name more packages (the tests' packaging tools).
  local want=(fonts-dejavu-core libgl1 libegl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3
              libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-xinerama0 libxcb-randr0
              libxcb-render-util0 libxcb-image0 "$@")
  command -v dpkg-query >/dev/null || return 0
  [ -n "${HASHLENS_NO_SYSTEM_PACKAGES:-}" ] && return 0  # the tests of this script set it
  local missing=()
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Installing system packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "Note: these system packages may be needed for Qt: ${missing[*]}" >&2
  fi
}

python_env() {
  # The install is editable, so code changes need no reinstall: only a change to the
  # dependencies (pyproject.toml) or the extras asked for does. A stamp holding their hash
  # skips pip when nothing changed (about 7 s otherwise).
  local extras=$1 stamp="$VENV/.hashlens-install" want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1) extras=$extras"
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && grep -qxF "$want" "$stamp"; then
    return 0
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    echo "Installing Hashlens and its dependencies into $VENV (first run, about a minute)..."
    "$PY" -m venv "$VENV"
  else
    echo "pyproject.toml or the extras changed: updating $VENV..."
  fi
  rm -f "$stamp"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  # setuptools warns on every editable install that a folder named like a package may
  # shadow it; that is exactly this layout, so the boxed warning is only noise here.
  PYTHONWARNINGS="ignore:Editable installation" "$VENV/bin/python" -m pip install -q -e ".$extras"
  # `[test]` includes everything the plain install has, so it satisfies `run` as well.
  echo "$want" >"$stamp"
  [ "$extras" = "[test]" ] && echo "$(sha256sum pyproject.toml | cut -d' ' -f1) extras=" >>"$stamp"
  return 0
}

servers() {
  # The local servers the tests use; started the documented way when they are down.
  if command -v pg_ctlcluster >/dev/null && ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  if [ -x /usr/sbin/mariadbd ] && ! mysqladmin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    for _ in $(seq 1 30); do mysqladmin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break; sleep 1; done
  fi
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && break; sleep 1; done
}

case "${1:-}" in
  run)
    system_packages
    python_env ""
    shift
    exec "$VENV/bin/hashlens" "$@"
    ;;
  test)
    # The packaging tests build the Linux bundle (binutils strips it) and check the .deb's
    # desktop entry (desktop-file-utils) and AppStream metainfo (appstream).
    system_packages binutils desktop-file-utils appstream
    python_env "[test]"
    servers
    shift
    export QT_QPA_PLATFORM=offscreen
    exec "$VENV/bin/python" -m pytest -m "not soak" "$@"
    ;;
  *)
    echo "usage: scripts/dev.sh run|test [arguments]" >&2
    exit 2
    ;;
esac
