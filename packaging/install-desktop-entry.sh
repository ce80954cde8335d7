#!/usr/bin/env bash
# Install the desktop entry and icon for the current user (after `pip install hashlens` or
# `pipx install hashlens`, which put `hashlens-gui` on the PATH that the entry runs).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
id=io.github.hashlens.Hashlens
apps=${XDG_DATA_HOME:-$HOME/.local/share}/applications
icons=${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor/scalable/apps
mkdir -p "$apps" "$icons"
install -m 644 "$here/$id.desktop" "$apps/$id.desktop"
install -m 644 "$here/../resources/hashlens.svg" "$icons/$id.svg"
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" || true
command -v hashlens-gui >/dev/null || echo "Note: hashlens-gui is not on your PATH; the menu entry runs it." >&2
echo "Installed Hashlens in your applications menu."
