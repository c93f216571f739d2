#!/bin/bash
# Records golden data from drbd-utils' drbdsetup-84 (/lib/drbd/drbdsetup-84,
# drbd-utils 9.22) on a host without DRBD, with the LD_PRELOAD shim
# capture84.c (see there):
#
#  - requests84.txt: for every line of commands84.txt, "== <line>" and the
#    requests drbdsetup-84 sent ("req <nlmsg_flags> <hex from genlmsghdr>");
#  - render/<name>.out: for every render/<name>.replies (whose first line is
#    "# drbdsetup-84 <args>"), what drbdsetup-84 printed when the kernel's
#    answers were those lines: stdout, then "-- stderr --", stderr, then
#    "-- exit <status> --" (99: still waiting when the replies ran out), then
#    the requests it sent.
#
# The tests in ../src/golden.rs compare rdrbd's drbdsetup with these files.
# Needs gcc and a kernel with the SEG6 generic netlink family; run from any
# directory: userspace/drbdsetup/golden/capture.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
setup=${DRBDSETUP_84:-/lib/drbd/drbdsetup-84}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -shared -fPIC -O2 -Wall -o "$tmp/capture84.so" "$here/capture84.c" -ldl

out="$here/requests84.txt"
: > "$out"
while IFS= read -r line; do
  case "$line" in ''|'#'*) continue ;; esac
  echo "== $line" >> "$out"
  read -ra words <<< "$line"  # split, but do not glob [ipv6] addresses
  env LD_PRELOAD="$tmp/capture84.so" CAP84_OUT="$out" \
    timeout 2 "$setup" "${words[@]}" > /dev/null 2>&1 < /dev/null || true
done < "$here/commands84.txt"

for replies in "$here"/render/*.replies; do
  [ -e "$replies" ] || continue
  args=$(head -n1 "$replies" | sed -n 's/^# drbdsetup-84 //p')
  [ -n "$args" ] || { echo "capture: $replies lacks its command line" >&2; exit 1; }
  result=${replies%.replies}.out
  set +e
  # shellcheck disable=SC2086
  : > "$tmp/requests"
  env LD_PRELOAD="$tmp/capture84.so" CAP84_OUT="$tmp/requests" CAP84_REPLIES="$replies" TZ=UTC \
    timeout 5 "$setup" $args > "$tmp/stdout" 2> "$tmp/stderr" < /dev/null
  status=$?
  set -e
  { cat "$tmp/stdout"; echo "-- stderr --"; cat "$tmp/stderr"; echo "-- exit $status --"
    cat "$tmp/requests"; } > "$result"
done
echo "capture: wrote $out and $(ls "$here"/render/*.out 2>/dev/null | wc -l) render results"
