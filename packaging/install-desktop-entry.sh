#!/usr/bin/env bash
# Install the desktop entry and icon for the current user (after `pip install hashlens`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
apps=${XDG_DATA_HOME:-$HOME/.local/share}/applications
icons=${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/scalable/apps
mkdir -p "$apps" "$icons"
install -m 644 "$here/hashlens.desktop" "$apps/hashlens.desktop"
install -m 644 "$here/../resources/hashlens.svg" "$icons/hashlens.svg"
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" || true
echo "Installed Hashlens in your applications menu."
