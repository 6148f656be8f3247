#!/usr/bin/env bats
# The soak's short version (issue 13; tests/soak/soak, whose one-hour run is
# SOAK_SECONDS=3600): churn in four processes on one address through
# ustcp-impair (loss, reordering, duplication), every byte checked, no hang,
# every side's error-free, fds back to their start, no socket left behind.

load helpers

@test "soak: 40 s of churn in four processes on one address through loss, reordering and duplication" {
	[ "$(id -u)" = 0 ] || skip "needs root"
	run timeout -k 10 200 env SOAK_SECONDS=40 "$BATS_TEST_DIRNAME/../soak/soak" "$BUILD"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"== soak: passed"* ]]
}
