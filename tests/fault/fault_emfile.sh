#!/bin/sh
# The host runs out of descriptors in the middle of a workflow (the faulty
# backend takes every one left at its first start_step, as a backend
# holding many connections might, and gives them back in
# destroy_workflow).  What the host then cannot open (a pipe, a context's
# timer) fails the step, not the process: perch must still call
# destroy_step for the step and destroy_workflow exactly once, and exit 3
# with the reason (EMFILE) said.  Expected to fail (XFAIL_TESTS): a context
# that cannot get its timerfd makes perch exit(3) on the spot, from
# whatever thread, without destroy_workflow (host/ctx.c).
. "${abs_top_srcdir}/tests/integration/lib.sh"
. "${abs_top_srcdir}/tests/fault/fault_lib.sh"

two_stages >"$T/wf.json"
: >"$T/calls"
PERCH_FAULTY_MODE=exhaust-fds PERCH_FAULTY_LOG=$T/calls \
	run_bounded 60 --backend faulty run "$T/wf.json"
expect_ended "no descriptors left"
expect_calls start_step 1
expect_calls destroy_step 1
expect_calls destroy_workflow 1
expect_rc 3 "no descriptors left"
expect_grep 'Too many open files' "$T/err"
expect_no_fd_leak
