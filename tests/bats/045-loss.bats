#!/usr/bin/env bats
# Loss recovery and congestion control against the kernel's TCP, with every
# algorithm the stack has: transfers through ustcp-impair (loss, reordering,
# duplication, corruption, delay; seeded) arrive whole (sha256), close in
# order and never hang (every transfer under a timeout). How fast is the
# loss matrix's business (tests/bench/loss_matrix), not this file's.

load helpers
load host

setup() {
	export USTCP_MSL=0.5 # a short TIME-WAIT: the host exits once CLOSED
}

teardown() {
	host_stop
	topo_down
}

# Seeded (--seed 12): every run meets the same losses.
MIXED="loss 3% reorder 5% duplicate 1% corrupt 1% delay 5ms"

@test "reno: 2 MB from the stack through loss, reordering, duplication and corruption" {
	USTCP_CC=reno transfer send 2000000 --seed 12 --impair "$MIXED"
	assert_repaired send
}
@test "cubic: 2 MB from the stack through loss, reordering, duplication and corruption" {
	USTCP_CC=cubic transfer send 2000000 --seed 12 --impair "$MIXED"
	assert_repaired send
}
@test "reno: 1 MB from the stack through 10% loss both ways" {
	USTCP_CC=reno transfer send 1000000 --seed 12 --impair "loss 10%"
	assert_repaired send
}
@test "cubic: 1 MB from the stack through 10% loss both ways" {
	USTCP_CC=cubic transfer send 1000000 --seed 12 --impair "loss 10%"
	assert_repaired send
}
@test "cubic: 2 MB to the stack through loss, reordering, duplication and corruption" {
	USTCP_CC=cubic transfer recv 2000000 --seed 12 --impair "$MIXED"
	assert_repaired recv
}
@test "bbr: 2 MB from the stack through loss, reordering, duplication and corruption" {
	USTCP_CC=bbr transfer send 2000000 --seed 12 --impair "$MIXED"
	assert_repaired send
}
@test "bbr: 1 MB from the stack through 10% loss both ways" {
	USTCP_CC=bbr transfer send 1000000 --seed 12 --impair "loss 10%"
	assert_repaired send
}
@test "bbr: 2 MB from the stack through 1% loss and 20 ms of delay" {
	USTCP_CC=bbr transfer send 2000000 --seed 12 --impair "loss 1% delay 20ms"
	assert_repaired send
}
@test "bbr3: 2 MB from the stack through loss, reordering, duplication and corruption" {
	USTCP_CC=bbr3 transfer send 2000000 --seed 12 --impair "$MIXED"
	assert_repaired send
}
# Over IPv6 (issue 16): the same engine; one algorithm each way through the
# mixed impairments, and the 10% loss both ways.
@test "over IPv6: cubic: 2 MB from the stack through loss, reordering, duplication and corruption" {
	USTCP_CC=cubic TRANSFER_FAMILY=6 transfer send 2000000 --seed 12 --impair "$MIXED"
	assert_repaired send
}
@test "over IPv6: cubic: 2 MB to the stack through loss, reordering, duplication and corruption" {
	USTCP_CC=cubic TRANSFER_FAMILY=6 transfer recv 2000000 --seed 12 --impair "$MIXED"
	assert_repaired recv
}
@test "over IPv6: reno: 1 MB from the stack through 10% loss both ways" {
	USTCP_CC=reno TRANSFER_FAMILY=6 transfer send 1000000 --seed 12 --impair "loss 10%"
	assert_repaired send
}
