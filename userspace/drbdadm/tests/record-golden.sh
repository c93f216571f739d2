#!/bin/bash
# Records drbdadm-84's output (drbd-utils 9.22, Debian package drbd-utils)
# for every case in cases.txt into golden/NAME.txt: stdout, then a line
# "[exit N]". Normalised so that it compares with our drbdadm:
#   /lib/drbd/drbdsetup-84 and ./fake-drbdsetup  ->  drbdsetup
#   the absolute path of configs/                ->  @CONFIGS@
# Usage: tests/record-golden.sh [path to drbdadm-84]
set -euo pipefail
cd "$(dirname "$0")"
oracle=${1:-/lib/drbd/drbdadm-84}
[ -x "$oracle" ] || { echo "no drbdadm-84 at $oracle (apt-get install drbd-utils)" >&2; exit 1; }
configs=$(cd configs && pwd -P)
mkdir -p golden
rm -f golden/*.txt
n=0
while IFS='|' read -r name env args; do
	name=${name//[[:space:]]/}
	case "$name" in ''|'#'*) continue ;; esac
	# shellcheck disable=SC2086 # word splitting of env and args is intended
	out=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin __DRBD_NODE__=alpha $env \
		"$oracle" $args 2>/dev/null; echo "[exit $?]")
	printf '%s\n' "$out" |
		sed -e 's#/lib/drbd/drbdsetup-84#drbdsetup#g' \
		    -e 's#\./fake-drbdsetup#drbdsetup#g' \
		    -e "s#$configs#@CONFIGS@#g" > "golden/$name.txt"
	n=$((n + 1))
done < cases.txt
echo "recorded $n cases into $(pwd)/golden"
