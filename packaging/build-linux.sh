#!/usr/bin/env bash
# Build the Linux application bundle (a PyInstaller one-folder bundle that runs without
# Python) and a .deb made from it, in one go:
#   packaging/build-linux.sh            -> dist/hashlens/ and dist/hashlens_VERSION_ARCH.deb
#   packaging/build-linux.sh --no-deb   -> the bundle only
# Needs a Python with Hashlens's dependencies and PyInstaller ($PYTHON, default .venv/bin/python;
# `pip install pyinstaller`) and dpkg-deb. The desktop entry and the AppStream metainfo are
# checked with desktop-file-validate and appstreamcli when they are installed (Debian packages
# desktop-file-utils and appstream); HASHLENS_STRICT=1 makes their absence an error.
# $HASHLENS_DIST and $HASHLENS_BUILD move the output and work folders (default dist/, build/).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
DIST=${HASHLENS_DIST:-$ROOT/dist}
WORK=${HASHLENS_BUILD:-$ROOT/build}
ID=io.github.hashlens.Hashlens
make_deb=1
[ "${1:-}" = "--no-deb" ] && make_deb=0

step() { echo "==> $*"; }
human() { du -sh --apparent-size "$1" | cut -f1; }

VERSION=$(cd "$ROOT" && PYTHONPATH="$ROOT" "$PY" -c 'import app; print(app.__version__)')
"$PY" -c 'import PyInstaller' 2>/dev/null || { echo "build-linux: PyInstaller is missing: $PY -m pip install pyinstaller" >&2; exit 1; }
mkdir -p "$DIST" "$WORK"

step "Rendering the icon in hicolor sizes"
PYTHONPATH="$ROOT" QT_QPA_PLATFORM=offscreen "$PY" "$ROOT/packaging/render_icons.py" "$ROOT/resources/hashlens.svg" "$WORK/icons"

step "Building the bundle with PyInstaller (Hashlens $VERSION)"
HASHLENS_ICON_DIR="$WORK/icons" "$PY" -m PyInstaller --noconfirm --log-level WARN \
  --distpath "$DIST" --workpath "$WORK/pyinstaller" "$ROOT/packaging/hashlens.spec"
BUNDLE=$DIST/hashlens
# One program answers to both names: started as hashlens-gui it opens the window.
ln -sf hashlens "$BUNDLE/hashlens-gui"
# Strip only the interpreter, its standard extension modules and LLVM (numba's compiler,
# checked to still compile after stripping): NumPy's and SciPy's wheels carry patched
# libraries (OpenBLAS) that stripping breaks.
if command -v strip >/dev/null; then
  find "$BUNDLE/_internal" -maxdepth 1 -name 'libpython3*.so*' -type f -exec strip --strip-unneeded {} +
  find "$BUNDLE/_internal" -path '*/lib-dynload/*.so' -type f -exec strip --strip-unneeded {} +
  find "$BUNDLE/_internal" -path '*/llvmlite/binding/libllvmlite*.so' -type f -exec strip --strip-unneeded {} +
fi
install -m 644 "$WORK/icons/hicolor/256x256/apps/$ID.png" "$BUNDLE/hashlens.png"
echo "Bundle: $BUNDLE ($(human "$BUNDLE"))"

[ "$make_deb" = 1 ] || exit 0

step "Making the .deb"
ARCH=$(dpkg --print-architecture)
ROOTFS=$WORK/deb/root
rm -rf "$WORK/deb"
mkdir -p "$ROOTFS/opt" "$ROOTFS/usr/bin" "$ROOTFS/usr/share/applications" "$ROOTFS/usr/share/metainfo" \
         "$ROOTFS/usr/share/icons" "$ROOTFS/usr/share/doc/hashlens" "$ROOTFS/DEBIAN"
cp -a "$BUNDLE" "$ROOTFS/opt/hashlens"
ln -s /opt/hashlens/hashlens "$ROOTFS/usr/bin/hashlens"
ln -s /opt/hashlens/hashlens-gui "$ROOTFS/usr/bin/hashlens-gui"
install -m 644 "$ROOT/packaging/$ID.desktop" "$ROOTFS/usr/share/applications/$ID.desktop"
sed -e "s/@VERSION@/$VERSION/" -e "s/@DATE@/$(date -u +%Y-%m-%d)/" "$ROOT/packaging/$ID.metainfo.xml" \
  >"$ROOTFS/usr/share/metainfo/$ID.metainfo.xml"
cp -r "$WORK/icons/hicolor" "$ROOTFS/usr/share/icons/"
install -m 644 "$ROOT/LICENSE" "$ROOTFS/usr/share/doc/hashlens/copyright"
find "$ROOTFS/usr" -type d -exec chmod 755 {} +
find "$ROOTFS/usr/share" -type f -exec chmod 644 {} +
cat >"$ROOTFS/DEBIAN/control" <<CONTROL
Package: hashlens
Version: $VERSION
Architecture: $ARCH
Maintainer: The Hashlens developers <hashlens@users.noreply.github.com>
Installed-Size: $(du -sk "$ROOTFS" | cut -f1)
Depends: libc6 (>= 2.34), libgl1, libegl1, libfontconfig1, fonts-dejavu-core | fonts-freefont-ttf
Section: graphics
Priority: optional
Homepage: https://github.com/hashlens/hashlens
Description: browse, export and audit Media Server image-hash databases
 Hashlens keeps OpenText (IDOL) Media Server image-hash databases in its own store
 (SQLite, PostgreSQL or MariaDB), answers Media Server's image-hash actions and
 gives a fast window over databases of millions of hashes, with exports and audits.
 This package holds a self-contained bundle in /opt/hashlens.
CONTROL

step "Checking the desktop entry and the AppStream metainfo"
check() {  # check TOOL PACKAGE ARGS...
  local tool=$1 package=$2; shift 2
  if command -v "$tool" >/dev/null; then
    "$tool" "$@"
  elif [ "${HASHLENS_STRICT:-0}" = 1 ]; then
    echo "build-linux: $tool is missing (apt-get install $package)" >&2; exit 1
  else
    echo "build-linux: skipped $tool: not installed (apt-get install $package)"
  fi
}
check desktop-file-validate desktop-file-utils "$ROOTFS/usr/share/applications/$ID.desktop"
check appstreamcli appstream validate --no-net "$ROOTFS/usr/share/metainfo/$ID.metainfo.xml"

DEB=$DIST/hashlens_${VERSION}_${ARCH}.deb
# gzip: xz would save about a fifth but takes minutes on two cores.
dpkg-deb --root-owner-group -Zgzip --build "$ROOTFS" "$DEB" >/dev/null
echo "Package: $DEB ($(human "$DEB"); installs $(human "$ROOTFS") under /opt/hashlens)"
