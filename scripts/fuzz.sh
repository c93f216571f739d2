#!/usr/bin/env bash
# Runs every cargo-fuzz target of include/ (the parsers of peer packets,
# netlink requests, metadata blocks) for SECONDS each (default 120).
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`);
# not part of `make check`. Crashes land in include/fuzz/artifacts/.
set -euo pipefail
seconds=${1:-120}
cd "$(dirname "$0")/../include"
status=0
for target in $(cargo +nightly fuzz list); do
  echo "fuzz: $target for ${seconds}s"
  if cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 > "fuzz/$target.log" 2>&1; then
    echo "fuzz: $target: $(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "fuzz/$target.log" | tail -1) - no crash"
  else
    echo "fuzz: $target: FAILED, see include/fuzz/$target.log"; status=1
  fi
done
exit $status
