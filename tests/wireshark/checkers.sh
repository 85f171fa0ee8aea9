#!/bin/bash
# Wireshark's own code checkers (tools/checkhf.pl, tools/checkAPIs.pl, GPL-2.0-or-later) for
# tests/test_wireshark_checkers.py, from the source of the Wireshark this machine runs: Debian's
# wireshark_<version>.orig tarball (deb.debian.org, a package registry), its SHA-256 checked,
# the two scripts kept in /var/cache/msrsvd-clusprep/wireshark-tools/<version>/ (outside the
# repository; nothing of Wireshark's source is committed here). Once per machine.
set -euo pipefail
version=$(dpkg-query -W -f='${source:Upstream-Version}' tshark 2>/dev/null || true)
version=${version%%+*}
declare -A SHA256=(  # the orig tarballs these tests know (from the Debian .dsc)
  [4.0.17]=62fd1491b6211d1651a16a45ead15808970b3a6a9ebde2537f96722af47aaaa5
)
dest=/var/cache/msrsvd-clusprep/wireshark-tools/$version
if [ -z "$version" ] || [ -z "${SHA256[$version]:-}" ]; then
  echo "checkers: no known Wireshark source for tshark ${version:-(not installed)}" >&2; exit 1
fi
if [ -f "$dest/checkhf.pl" ] && [ -f "$dest/checkAPIs.pl" ]; then exit 0; fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
url=http://deb.debian.org/debian/pool/main/w/wireshark/wireshark_$version.orig.tar.bz2
command -v curl >/dev/null || apt-get install -y -q curl >/dev/null
curl -fsS --retry 3 -o "$tmp/orig.tar.bz2" "$url"
echo "${SHA256[$version]}  $tmp/orig.tar.bz2" | sha256sum -c --quiet -
tar -xjf "$tmp/orig.tar.bz2" -C "$tmp" --wildcards '*/tools/checkhf.pl' '*/tools/checkAPIs.pl'
mkdir -p "$dest"
cp "$tmp"/*/tools/checkhf.pl "$tmp"/*/tools/checkAPIs.pl "$dest/"
echo "checkers: Wireshark $version's checkhf.pl and checkAPIs.pl in $dest"
