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
# Every chroot also gets the C target's build packages (C_PACKAGES: Wireshark's development
# files, gcc, pkg-config), for tests/test_c_target.py to compile plugins against that tshark.
# Needs root (debootstrap, chroot). Exits non-zero, with the tail of the build's log, when
# a suite (or its GUI) could not be built; the other suites are still built.
#
# Safe to run twice at once and after a killed run: one set-up at a time holds the cache's
# lock (the other waits); a chroot is built in a folder of its own, .chroot-SUITE.XXXXXX,
# and SUITE becomes a symlink to it only once it is complete, so a test never sees a
# half-built one; a build that fails or is stopped (SIGINT, SIGTERM, SIGHUP) has its mounts
# undone and its folder removed; what a killed set-up left (a build still running, folders,
# mounts) is stopped and removed by the next one. A chroot that tests may be using is never
# changed in place: adding the GUI or the C build packages to a cached one builds a copy, and
# the old one goes once no process runs inside it.
set -uo pipefail
root=${WIRESHARK_CHROOTS:-/var/cache/msrsvd-clusprep/chroots}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
C_PACKAGES="libwireshark-dev libglib2.0-dev pkg-config gcc"
has_c() {  # whether chroot $1 can compile a plugin against its tshark (what C_PACKAGES bring)
  [ -x "$1/usr/bin/gcc" ] && [ -x "$1/usr/bin/pkg-config" ] && chroot "$1" pkg-config --exists wireshark 2>/dev/null
}
export DEBIAN_FRONTEND=noninteractive

if [ "${1:-}" = "--inside" ]; then
  # One build's steps, run by build() below in a process group of their own (so that a stop
  # reaches debootstrap and apt too), output to the suite's log.
  #   --inside SUITE DIR FRESH GUI   FRESH=1: debootstrap into DIR; GUI=1: add wireshark;
  #                                  C_PACKAGES are added whenever missing.
  #   Exit 0: done; tshark runs but 3: the GUI, 4: the C packages, 5: neither installed; else failed.
  suite=$2 dir=$3 fresh=$4 gui=$5
  if [ "$fresh" = 1 ]; then
    # minbase + tshark; sid's dependency set is sometimes not installable in one go, so
    # a failed second stage is mended once with apt-get -f install inside the chroot.
    debootstrap --variant=minbase --include=tshark "$suite" "$dir" "$mirror" \
      || { [ -x "$dir/usr/bin/apt-get" ] && chroot "$dir" apt-get -f install -y -q; }
    if ! chroot "$dir" tshark --version >/dev/null 2>&1; then
      chroot "$dir" apt-get -f install -y -q
      chroot "$dir" apt-get install -y -q tshark
    fi
  fi
  chroot "$dir" tshark --version >/dev/null 2>&1 || { echo "setup.sh: tshark does not run in $dir"; exit 1; }
  # tshark 4.4+ refuses Lua as root: the tests run it as this unprivileged user.
  chroot "$dir" sh -c 'id wstest >/dev/null 2>&1 || useradd --uid 4242 --user-group --create-home wstest' || exit 1
  add() {  # apt-get install $@ in the chroot; sid moves fast: when the package lists that
    # debootstrap fetched are stale, fetch them again
    chroot "$dir" apt-get install -y -q --no-install-recommends "$@" \
      || { chroot "$dir" apt-get update -q && chroot "$dir" apt-get install -y -q --no-install-recommends "$@"; }
  }
  code=0
  if [ "$gui" = 1 ] && [ ! -x "$dir/usr/bin/wireshark" ]; then
    add wireshark || { echo "setup.sh: the GUI (wireshark) did not install in $dir"; code=3; }
    chroot "$dir" tshark --version >/dev/null 2>&1 || { echo "setup.sh: tshark no longer runs in $dir"; exit 1; }
  fi
  if ! has_c "$dir"; then
    # tshark too: the development files are of one Wireshark version with the tshark they serve
    # shellcheck disable=SC2086
    if ! { add tshark $C_PACKAGES && has_c "$dir"; }; then
      echo "setup.sh: the C build packages ($C_PACKAGES) did not install in $dir"
      code=$((code == 3 ? 5 : 4))
    fi
    chroot "$dir" tshark --version >/dev/null 2>&1 || { echo "setup.sh: tshark no longer runs in $dir"; exit 1; }
  fi
  chroot "$dir" apt-get clean
  exit $code
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/wireshark/setup.sh: needs root (debootstrap and chroot); no chroot built" >&2
  case "${CI:-}" in 1|true|TRUE|True|yes) exit 1 ;; esac  # CI promises the whole matrix
  exit 0
fi
suites=("${@}")
[ "${#suites[@]}" -gt 0 ] || suites=(trixie sid)

if ! command -v debootstrap >/dev/null; then
  # the host's apt, one set-up at a time (and waiting for any other apt of the machine)
  flock /run/lock/msrsvd-clusprep-apt.lock sh -c 'apt-get -o DPkg::Lock::Timeout=600 update -qq &&
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq debootstrap >/dev/null' \
    || { echo "tests/wireshark/setup.sh: debootstrap did not install" >&2; exit 1; }
fi
mkdir -p "$root" && root=$(cd "$root" && pwd -P) || exit 1  # as /proc/PID/root names it (in_use)
exec 9>"$root/.lock"
if ! flock -n 9; then
  echo "chroots: another set-up holds $root/.lock; waiting for it"
  flock 9
fi

building=""  # the folder being built: removed unless it is published
inner=""     # the build's process group
unmount_under() {  # every mount at or below $1, deepest first (/proc/self/mountinfo: field 5)
  awk -v d="$1" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "chroots: cannot unmount $m" >&2; done
}
remove_tree() {  # never through a mount: /proc or /sys left mounted inside by a killed debootstrap
  unmount_under "$1"
  rm -rf --one-file-system "$1"
}
in_use() {  # whether a process (a test's tshark) has its root at or below $1
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    case $r in "$1" | "$1"/*) return 0 ;; esac
  done
  return 1
}
published() {  # whether a suite's symlink names $1
  local s
  for s in "$root"/*; do
    [ -L "$s" ] && [ "$(readlink "$s")" = "$(basename "$1")" ] && return 0
  done
  return 1
}
finish() {
  if [ -n "$inner" ]; then kill -TERM -- "-$inner" 2>/dev/null; wait "$inner" 2>/dev/null; fi
  if [ -n "$building" ]; then remove_tree "$building"; fi
}
trap finish EXIT
trap 'echo "chroots: stopped" >&2; exit 130' INT
trap 'echo "chroots: stopped" >&2; exit 143' TERM
trap 'exit 129' HUP

orphans() {  # the builds whose set-up was killed: under the lock, no live set-up owns one
  local p cmd
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    case $cmd in *"setup.sh --inside "*" $root/.chroot-"*) echo "${p#/proc/}" ;; esac
  done
}

tidy() {  # what failed or killed set-ups left, and chroots no longer published
  local d pid
  for pid in $(orphans); do  # its group: debootstrap, apt, dpkg
    echo "chroots: stopping the build of a killed set-up (process group $pid)"
    kill -KILL -- "-$pid" 2>/dev/null
  done
  for _ in $(seq 50); do [ -z "$(orphans)" ] && break; sleep 0.1; done
  rm -f "$root"/.link-*
  for d in "$root"/.chroot-* "$root"/.retired-*; do
    [ -d "$d" ] || continue
    published "$d" && continue
    if in_use "$d"; then
      echo "chroots: keeping $d while a process runs inside it"
      continue
    fi
    echo "chroots: removing $(basename "$d") (unfinished or replaced)"
    remove_tree "$d"
  done
  for d in "$root"/*; do  # an unfinished build of the former layout (a folder named after its suite)
    if [ -d "$d" ] && [ ! -L "$d" ] && [ ! -f "$d/.complete" ] && ! in_use "$d"; then
      echo "chroots: removing the unfinished $(basename "$d")"
      remove_tree "$d"
    fi
  done
  find "$root" -maxdepth 1 -name 'tshark-*' -type l -delete  # links earlier tests made here
}

publish() {  # $1 suite: $root/$1 becomes a symlink to $building, in one rename
  local suite=$1 old=""
  touch "$building/.complete"
  if [ -d "$root/$suite" ] && [ ! -L "$root/$suite" ]; then  # the former layout's real folder
    old=$(mktemp -u "$root/.retired-$suite.XXXXXX")
    mv -T "$root/$suite" "$old" || return 1
  fi
  ln -sfn "$(basename "$building")" "$root/.link-$suite" && mv -T "$root/.link-$suite" "$root/$suite" || return 1
  building=""
}

build() {  # $1 suite, $2 1 to add the GUI, $3 a chroot to copy instead of bootstrapping
  local suite=$1 gui=$2 from=${3:-} log=$root/$1.log fresh=1 code
  building=$(mktemp -d "$root/.chroot-$suite.XXXXXX") && chmod 755 "$building" || return 1
  : >"$log"
  if [ -n "$from" ]; then
    fresh=0
    cp -a --reflink=auto "$from/." "$building/" >>"$log" 2>&1 || return 1
    rm -f "$building/.complete"
    find "$building/tmp" -mindepth 1 -delete  # what tests running in the old one staged there
  fi
  setsid bash "$0" --inside "$suite" "$building" "$fresh" "$gui" 9>&- >>"$log" 2>&1 &
  inner=$!
  wait "$inner"
  code=$?
  inner=""
  case $code in
    0) publish "$suite" ;;
    3 | 4 | 5) publish "$suite" && return "$code" ;;
    *) return 1 ;;
  esac
}

version() {  # "TShark (Wireshark) 4.6.9" in chroot $1
  chroot "$1" tshark --version 2>/dev/null | head -n 1 | sed 's/\.$//'
}

failed() {  # $1 suite, $2 what failed
  echo "chroot $1: FAILED, $2; last lines of $root/$1.log:" >&2
  tail -n 20 "$root/$1.log" >&2
  [ -z "$building" ] || remove_tree "$building"
  building=""
  status=1
}

tidy
status=0
for suite in "${suites[@]}"; do
  dir=$root/$suite
  gui=0
  case " ${WITH_GUI:-} " in *" $suite "*) gui=1 ;; esac
  with="the C build$([ "$gui" = 1 ] && echo ' and the GUI')"
  if [ -f "$dir/.complete" ] && chroot "$dir" tshark --version >/dev/null 2>&1; then
    lacks=()
    [ "$gui" = 0 ] || [ -x "$dir/usr/bin/wireshark" ] || lacks+=("the GUI")
    has_c "$dir" || lacks+=("the C build packages")
    if [ "${#lacks[@]}" = 0 ]; then
      echo "chroot $suite: cached, $(version "$dir"), with $with"
      continue
    fi
    what="${lacks[*]}"
    echo "chroot $suite: adding ${what/ the C/ and the C}, in a copy (log: $root/$suite.log)"
    build "$suite" "$gui" "$(cd "$dir" && pwd -P)"
  else
    echo "chroot $suite: building (log: $root/$suite.log)"
    build "$suite" "$gui"
  fi
  case $? in
    0) echo "chroot $suite: ready, $(version "$dir"), with $with" ;;
    3) failed "$suite" "the GUI did not install ($(version "$dir") is ready)" ;;
    4) failed "$suite" "the C build packages did not install ($(version "$dir") is ready)" ;;
    5) failed "$suite" "neither the GUI nor the C build packages installed ($(version "$dir") is ready)" ;;
    *) failed "$suite" "tshark could not be set up" ;;
  esac
done
tidy  # the chroots just replaced, unless a test still runs in them
exit $status
