#!/usr/bin/env bash
# Builds minimal Debian chroots holding the tshark that users run today, for the version
# matrix of the tests: trixie (4.4 series, Lua 5.4) and sid (4.6 series, Lua 5.4). The
# system tshark (bookworm's 4.0, Lua 5.2) is the third version. The chroots live outside
# the repository and are reused: a complete one is never rebuilt.
#
#   bash tests/wireshark/setup.sh [suite ...]     default: trixie sid
#
# WIRESHARK_CHROOTS picks the folder (default /var/cache/msrsvd-clusprep/chroots).
# WITH_GUI="sid" also installs Wireshark's GUI in those suites, for tests/test_gui.py.
# Needs root (debootstrap, chroot). A suite that cannot be built is reported with the
# reason and the script goes on; the tests then show that version as skipped.
set -uo pipefail
root=${WIRESHARK_CHROOTS:-/var/cache/msrsvd-clusprep/chroots}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suites=("$@")
[ "${#suites[@]}" -gt 0 ] || suites=(trixie sid)

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/wireshark/setup.sh: needs root (debootstrap and chroot); skipped" >&2
  exit 0
fi
if ! command -v debootstrap >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
mkdir -p "$root"
status=0
for suite in "${suites[@]}"; do
  dir=$root/$suite
  log=$root/$suite.log
  if [ -f "$dir/.complete" ]; then
    echo "chroot $suite: cached, $(chroot "$dir" tshark --version 2>/dev/null | head -n 1)"
    continue
  fi
  echo "chroot $suite: building in $dir (log: $log)"
  rm -rf "$dir"
  {
    # minbase + tshark; sid's dependency set is sometimes not installable in one go, so
    # a failed second stage is mended once with apt-get -f install inside the chroot.
    debootstrap --variant=minbase --include=tshark "$suite" "$dir" "$mirror" \
      || { [ -x "$dir/usr/bin/apt-get" ] && chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get -f install -y -q; }
    if ! chroot "$dir" tshark --version >/dev/null 2>&1; then
      chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get -f install -y -q
      chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q tshark
    fi
  } >"$log" 2>&1
  if chroot "$dir" tshark --version >/dev/null 2>&1; then
    # tshark 4.6 refuses Lua as root: the tests run it as this unprivileged user.
    chroot "$dir" sh -c 'id wstest >/dev/null 2>&1 || useradd --uid 4242 --user-group --create-home wstest' >>"$log" 2>&1
    chroot "$dir" apt-get clean >>"$log" 2>&1
    touch "$dir/.complete"
    echo "chroot $suite: ready, $(chroot "$dir" tshark --version 2>/dev/null | head -n 1)"
  else
    echo "chroot $suite: FAILED, tshark does not run; last lines of $log:" >&2
    tail -n 15 "$log" >&2
    status=1
  fi
done
for suite in ${WITH_GUI:-}; do
  dir=$root/$suite
  [ -f "$dir/.complete" ] || continue
  if [ -x "$dir/usr/bin/wireshark" ]; then
    echo "chroot $suite: GUI cached"
  elif chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wireshark \
      >>"$root/$suite.log" 2>&1; then
    chroot "$dir" apt-get clean >>"$root/$suite.log" 2>&1
    echo "chroot $suite: GUI installed"
  else
    # sid moves fast; a package that does not install today only skips the 4.6 GUI test
    chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$root/$suite.log" 2>&1
    chroot "$dir" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wireshark \
      >>"$root/$suite.log" 2>&1 || echo "chroot $suite: GUI did not install (see $root/$suite.log)" >&2
  fi
done
exit $status
