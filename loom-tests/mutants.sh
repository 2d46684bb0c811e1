#!/usr/bin/env bash
# Shows that the loom models can fail: runs the model that must catch each
# deliberately broken variant of the crate (`QUIESCENT_MUTANT=...` when the
# model runs, see src/mutant.rs). One `--cfg loom` build serves every mutant
# (the same target directory as the models' run, so after it nothing is
# rebuilt). Passes only if every model fails on its mutant. Run from the
# repository root: bash loom-tests/mutants.sh
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
    # The defects of issue 9, each put back in the fixed protocol.
    "anchor-late-transfer|wait_group|token_outlives_the_group"
    "anchor-late-transfer|shutdown|last_handle_drop_vs_last_guard_drop"
    "anchor-late-transfer|handles|group_drop_vs_last_token_drop"
    "anchor-late-transfer|handles|root_handle_drop_vs_last_guard_drop"
    "anchor-late-transfer|handles|triggered_child_handles_drop_vs_last_child_guard_drop"
    "notify-without-ref|handles|wait_then_drop_group_vs_last_token_drop"
    "notify-without-ref|handles|wait_async_then_drop_group_vs_last_token_drop"
    "notify-without-ref|handles|zero_timeout_wait_then_drop_group_vs_last_token_drop"
    "notify-without-ref|handles|triggered_root_handle_drop_vs_last_guard_drop"
    "notify-without-ref|handles|drain_then_drop_root_vs_last_guard_drop"
    "notify-without-ref|handles|child_drain_then_drop_vs_last_child_guard_drop"
    "names-unlocked|handles|named_clone_vs_straggler_snapshot"
    "names-unlocked|shutdown|named_child_clone_vs_holders"
    "release-no-acquire|handles|other_holder_release_happens_before_the_free"
    # A reference paid and never given back: only the end-of-model leak
    # check (src/core/shadow.rs's live-node count) can see it.
    "close-keeps-ref|shutdown|two_triggers_elect_one"
    # The signal policy's extra count taken on a drained latch revives it.
    "busy-unchecked|shutdown|busy_hold_vs_last_guard_drop"
    # An admission that is not refused in the same RMW that would raise the
    # count: a guard taken after the trigger on a drained latch.
    "unchecked-admission|shutdown|adv_count_after_drain_vs_refused"
    # One-RMW admission: a release after the close that never counts itself
    # out of the drain field (the drain hangs), and a close that does not
    # move the open count there (the drain returns under a live guard).
    "release-skips-drain|shutdown|last_guard_drop_vs_trigger"
    "release-skips-drain|shutdown|guard_clone_after_trigger_vs_drain"
    # A clone's one-test acquire that misses a DRAINING word.
    "clone-skips-drain|shutdown|guard_clone_after_trigger_vs_drain"
    "clone-skips-drain|clone_adversary|adv_child_clone_vs_root_trigger_and_drain"
    "close-keeps-count|shutdown|last_guard_drop_vs_trigger"
    "close-keeps-count|shutdown|guard_vs_trigger"
    # A trigger waker registered after the trigger took the wakers is lost.
    "no-recheck|shutdown|wait_triggered_async_vs_trigger"
    # A poll that takes the trigger for the drain returns a report early.
    "poll-before-drain|shutdown|try_wait_drained_vs_last_guard_drop"
    "poll-before-drain|shutdown|two_pollers_vs_last_guard_drop"
    # Promises at the edges: a wake-up under the list's lock (a waker that
    # registers again deadlocks), a waker's panic that cuts the wake-ups
    # after it (the blocked drainer sleeps for ever, references leak), a
    # spawned thread counted twice, and a spawn guard released before the
    # panic's message is in.
    "wake-under-lock|promises|reentrant_waker_registers_again_during_force"
    "panic-cuts-wakes|promises|panicking_waker_vs_blocked_drainer"
    "spawn-hidden-count|promises|spawned_thread_is_one_guard"
    "spawn-no-defer|promises|spawned_panic_message_reaches_the_drain"
    # The deferral that never ends early: a Drop of the unwinding that
    # drains its own latch waits for itself.
    "no-settle|promises|spawned_unwinding_drains_its_own_latch"
    # A child with no guard taken for dead by the cascade, though a future
    # still waits on it.
    "prune-by-count|handles|prune_vs_guard_turned_into_future"
    # The lifecycle: an announcement that does not cascade (a child's
    # waiter sleeps through it); the cause recorded after the election, not
    # with it.
    "announce-no-cascade|lifecycle|announced_future_on_a_child_vs_parent_announce"
    "cause-after-election|lifecycle|first_cause_wins_and_a_child_reports_its_ancestors"
)
# `bash loom-tests/mutants.sh NAME` runs only the rows of mutant NAME.
if [ $# -gt 0 ]; then
    keep=()
    for row in "${mutants[@]}"; do [[ "$row" == "$1|"* ]] && keep+=("$row"); done
    mutants=("${keep[@]}")
fi

escaped=0
for row in "${mutants[@]}"; do
    IFS='|' read -r mutant file model <<<"$row"
    start=$SECONDS
    log=$(RUSTFLAGS="--cfg loom" QUIESCENT_MUTANT="$mutant" \
        CARGO_TARGET_DIR=target/loom \
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
