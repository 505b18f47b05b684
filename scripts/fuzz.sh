#!/usr/bin/env bash
# Runs one fuzz target with libFuzzer on the stable toolchain: cargo-fuzz needs nightly for its
# sanitizer flags, but SanitizerCoverage (what guides libFuzzer) is reachable through stable -C
# flags, and safe Rust needs no AddressSanitizer to report a panic. Not part of the test command.
#
#   ./scripts/fuzz.sh TARGET [SECONDS] [libFuzzer flags...]
#   TARGET: relabel | parser | config | control   (fuzz/fuzz_targets/)
#
# New inputs go to fuzz/corpus/TARGET/ (not committed); seeds are read from fuzz/seeds/TARGET/.
# A crash leaves fuzz/crash-*: replay it with ./scripts/fuzz.sh TARGET 0 fuzz/crash-...
set -euo pipefail
target="${1:?usage: scripts/fuzz.sh TARGET [SECONDS] [libFuzzer flags...]}"
secs="${2:-60}"
shift $(( $# < 2 ? $# : 2 ))
# A crash file named relative to where the script was started.
if [ $# -gt 0 ] && [ -f "$1" ]; then
  crash="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
  shift
  set -- "$crash" "$@"
fi
cd "$(dirname "$0")/../fuzz"

export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros (instrumented, they would
# not link: nothing provides the coverage callbacks outside libFuzzer), as cargo-fuzz does.
host="$(rustc -vV | sed -n 's/^host: //p')"
cargo build --release --target "$host" --bin "$target"
bin="$CARGO_TARGET_DIR/$host/release/$target"

if [ $# -gt 0 ] && [ -f "$1" ]; then
  exec "$bin" "$@"   # reproduce: scripts/fuzz.sh TARGET 0 crash-<hash>
fi
mkdir -p "corpus/$target"
exec "$bin" "corpus/$target" "seeds/$target" -max_total_time="$secs" "$@"
