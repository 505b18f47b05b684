#!/usr/bin/env bash
# Runs `promshard check config` over the *.good.yml and *.bad.yml files of a local checkout of
# prometheus/prometheus (config/testdata) and prints, per file, whether promshard's verdict
# matches Prometheus's. Opt-in: not part of scripts/test.sh (it needs a Prometheus checkout).
#
#   ./scripts/prometheus-testdata.sh PROMETHEUS_CHECKOUT [PROMSHARD_BINARY]
#
# Verdicts:
#   ok            good file accepted, or bad file refused
#   not-impl      good file refused with "not implemented by promshard" (a feature promshard
#                 refuses by name, e.g. a service discovery it does not have); acceptable
#   WRONG         good file refused for another reason, or bad file accepted
# Exit status 1 if any file is WRONG.
set -uo pipefail

checkout=${1:?usage: $0 PROMETHEUS_CHECKOUT [PROMSHARD_BINARY]}
bin=${2:-$(cd "$(dirname "$0")/.." && pwd)/target/debug/promshard}
dir="$checkout/config/testdata"
[ -d "$dir" ] || { echo "no $dir" >&2; exit 2; }
[ -x "$bin" ] || { echo "no promshard binary at $bin (cargo build --bin promshard)" >&2; exit 2; }
# Absolute: the loop below runs from the testdata directory.
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

ok=0 notimpl=0 wrong=0 good=0 bad=0
printf '%-62s %-5s %-9s %s\n' file want verdict "promshard's first error line"
# Relative paths inside the files (rule_files, scrape_config_files) resolve from the testdata
# directory, as `promtool check config` resolves them from the file's directory.
cd "$dir" || exit 2
for f in *.good.yml *.bad.yml; do
  case "$f" in *.good.yml) want=good; good=$((good + 1)) ;; *) want=bad; bad=$((bad + 1)) ;; esac
  out=$("$bin" check config "$f" 2>&1)
  rc=$?
  msg=$(printf '%s' "$out" | head -1 | cut -c1-160)
  if [ "$want" = good ] && [ $rc -eq 0 ]; then
    verdict=ok; msg=""
  elif [ "$want" = bad ] && [ $rc -ne 0 ]; then
    verdict=ok
  elif [ "$want" = good ] && printf '%s' "$out" | grep -q "not implemented by promshard"; then
    verdict=not-impl
  else
    verdict=WRONG
  fi
  case $verdict in ok) ok=$((ok + 1)) ;; not-impl) notimpl=$((notimpl + 1)) ;; *) wrong=$((wrong + 1)) ;; esac
  printf '%-62s %-5s %-9s %s\n' "$f" "$want" "$verdict" "$msg"
done
echo
echo "files: $((good + bad)) ($good good, $bad bad); ok: $ok; refused by name (not implemented): $notimpl; WRONG: $wrong"
[ $wrong -eq 0 ]
