#!/usr/bin/env bash
# Runs the cargo fuzz targets in fuzz/ (see docs/fuzzing.md).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# SECONDS per target (default 600); all targets unless some are named.
# The corpus grows in fuzz/corpus/<target>/ (only the seed-* files there are
# committed). A crash, a hang (an input taking over 10 s) or memory over
# 2 GiB fails the run; the input is kept in fuzz/artifacts/<target>/.
#
# cargo fuzz passes nightly-only flags (-Zsanitizer, -Cpasses=sancov);
# RUSTC_BOOTSTRAP=1 lets the stable toolchain (the one CI has) accept them.
# PORCHLIGHT_FUZZ_BUILD adds cargo fuzz build flags (CI uses --dev: a cold
# build in a few minutes instead of a slower optimised one).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo/fuzz"
seconds="${1:-600}"
shift || true
export RUSTC_BOOTSTRAP=1
read -r -a build_flags <<< "${PORCHLIGHT_FUZZ_BUILD:-}"

if ! command -v cargo-fuzz >/dev/null; then
  echo "installing cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

start=$(date +%s)
cargo fuzz build "${build_flags[@]}"
echo "build: $(( $(date +%s) - start )) s"

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
summary=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  echo
  echo "--- $target: ${seconds} s"
  # -timeout marks an input slower than 10 s as a hang.
  # New inputs go to the first directory; the others only seed.
  seeds=()
  case "$target" in
    onvif_xml) seeds=(../tests/data/onvif) ;;  # real cameras' answers (README there)
  esac
  # Real answers are a few KiB; a 160 KiB seed would make every input that long.
  max_len=()
  [ "$target" = onvif_xml ] && max_len=(-max_len=16384)
  if ! cargo fuzz run "${build_flags[@]}" "$target" "corpus/$target" "${seeds[@]}" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 "${max_len[@]}" \
      -print_final_stats=1 >"$logs/$target.log" 2>&1; then
    tail -n 60 "$logs/$target.log"
    echo >&2
    echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/." >&2
    echo "reproduce: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run ${build_flags[*]} $target fuzz/artifacts/$target/<file>" >&2
    exit 1
  fi
  done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$logs/$target.log" | tail -1 || true)"
  execs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$logs/$target.log" | grep -oE '[0-9]+$' || true)"
  rate="$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$logs/$target.log" | grep -oE '[0-9]+$' || true)"
  rss="$(grep -oE 'stat::peak_rss_mb: *[0-9]+' "$logs/$target.log" | grep -oE '[0-9]+$' || true)"
  cov="$(echo "$done_line" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+' || true)"
  ft="$(echo "$done_line" | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+' || true)"
  corp="$(echo "$done_line" | grep -oE 'corp: [0-9]+' | grep -oE '[0-9]+' || true)"
  line="$(printf '%-14s %10s execs %7s/s  cov %5s  ft %6s  corpus %5s  rss %5s MB' \
    "$target" "$execs" "$rate" "$cov" "$ft" "$corp" "$rss")"
  echo "$line"
  summary+=("$line")
done
echo
echo "fuzzed ${#targets[@]} targets, ${seconds} s each, no crash, $(( $(date +%s) - start )) s in all:"
printf '  %s\n' "${summary[@]}"
