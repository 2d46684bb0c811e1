#!/usr/bin/env bash
# Shows that the loom models can fail: builds quiescent with one deliberately
# broken variant at a time (`--cfg quiescent_mutant="..."`, see the crate
# source) and runs the model that must catch it. Passes only if every model
# fails on its mutant. Run from the repository root: bash loom-tests/mutants.sh
set -uo pipefail
cd "$(dirname "$0")/.."

# mutant | test file | model that must catch it
mutants=(
    "relaxed-release|wait_group|last_token_drop_vs_wait"
    "no-recheck|wait_group|last_token_drop_vs_wait"
    "no-recheck|wait_group|last_token_drop_vs_first_poll_of_wait_async"
    "unchecked-admission|shutdown|guard_vs_trigger"
    "racy-election|shutdown|two_triggers_elect_one"
    "unchecked-ancestors|shutdown|child_guard_vs_parent_trigger"
    "names-first|shutdown|named_guard_vs_straggler_snapshot"
    "unlocked-child|shutdown|child_vs_parent_trigger"
    "anchor-no-transfer|wait_group|token_outlives_the_group"
    "anchor-no-transfer|shutdown|last_handle_drop_vs_last_guard_drop"
)

escaped=0
for row in "${mutants[@]}"; do
    IFS='|' read -r mutant file model <<<"$row"
    start=$SECONDS
    log=$(RUSTFLAGS="--cfg loom --cfg quiescent_mutant=\"$mutant\"" \
        CARGO_TARGET_DIR="target/mutant-$mutant" \
        cargo test -q -p loom-tests --release --test "$file" -- --exact "$model" 2>&1)
    status=$?
    # The line after the first panic location says why (loom's verdict or
    # the model's assertion).
    why=$(grep -m1 -A1 'panicked at' <<<"$log" | tail -1 | cut -c1-110)
    # A use-after-free may crash the process instead (heap corruption).
    [ -n "$why" ] || why="crashed: $(grep -m1 -oE 'signal: [0-9]+, [A-Z]+' <<<"$log")"
    if [ $status -eq 0 ]; then
        echo "ESCAPED  $mutant: $model passed ($((SECONDS - start))s)"
        escaped=$((escaped + 1))
    else
        echo "caught   $mutant by $model: ${why:-failed} ($((SECONDS - start))s)"
    fi
done
echo "$((${#mutants[@]} - escaped)) caught, $escaped escaped"
[ "$escaped" -eq 0 ]
