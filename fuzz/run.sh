#!/usr/bin/env bash
# CI's fuzz stage (.ci/run), also usable by hand:
#
#   bash fuzz/run.sh [SECONDS]     # default 60 s per target
#
# Builds the cargo-fuzz targets (release, debug assertions, AddressSanitizer), replays every
# input kept under fuzz/regressions/<target>/, then fuzzes each target for SECONDS starting
# from its committed corpus (fuzz/corpus/<target>/), two targets at a time. New inputs go to a
# temporary directory, so the committed corpus is left as it is. Fails on any crash, failed
# invariant, leak or input slower than 10 s; the crashing input is in fuzz/artifacts/<target>/.
# Needs the nightly toolchain and cargo-fuzz (.ci/run installs both when missing).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
fuzz_dir=$PWD
secs=${1:-60}
targets=(proxy_header remote_list list_file config_toml request_framing response_framing json_pointer)
parallel=2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

started=$SECONDS
cargo +nightly fuzz build
echo "fuzz: built ${#targets[@]} targets in $((SECONDS - started)) s"

for t in "${targets[@]}"; do
  inputs=(regressions/"$t"/*)
  [[ -e ${inputs[0]} ]] || continue
  if ! cargo +nightly fuzz run "$t" "${inputs[@]}" >"$tmp/$t.regressions.log" 2>&1; then
    tail -n 40 "$tmp/$t.regressions.log"
    echo "fuzz: FAIL $t on a kept regression input (fuzz/regressions/$t/)" >&2
    exit 1
  fi
  echo "fuzz: ok   $t replays ${#inputs[@]} regression input(s)"
done

run_one() {
  local t=$1 dict=()
  [[ -f dict/$t.dict ]] && dict=(-dict="$fuzz_dir/dict/$t.dict")
  mkdir -p "$tmp/$t" "artifacts/$t"
  cargo +nightly fuzz run "$t" "$tmp/$t" "$fuzz_dir/corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -print_final_stats=1 "${dict[@]}" >"$tmp/$t.log" 2>&1
}

failed=0
for ((i = 0; i < ${#targets[@]}; i += parallel)); do
  pids=()
  batch=("${targets[@]:i:parallel}")
  for t in "${batch[@]}"; do
    run_one "$t" &
    pids+=($!)
  done
  for j in "${!batch[@]}"; do
    t=${batch[j]}
    if wait "${pids[j]}"; then
      # e.g. "#123456 DONE cov: 321 ft: 2010 corp: 407/44Kb ... exec/s: 2024"
      echo "fuzz: ok   $t ${secs}s: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$tmp/$t.log" | tail -n 1)"
    else
      failed=1
      grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$tmp/$t.log" | tail -n 60
      echo "fuzz: FAIL $t (input saved under fuzz/artifacts/$t/)" >&2
    fi
  done
done
echo "fuzz: $((SECONDS - started)) s in all"
exit "$failed"
