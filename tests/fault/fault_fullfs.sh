#!/bin/sh
# The local backend's temp dir on a full filesystem: a small tmpfs given as
# --backend-local-temp-dir.
#  1. full (no block, no inode left): perch fails cleanly - exit 3, the
#     reason (ENOSPC, "No space left on device") in one line, nothing left;
#  2. no block left but inodes free: the workflow's folders fit, a step
#     that writes nothing runs - exit 0, nothing left;
#  3. a step that writes more than fits fails as a step (exit 1, its own
#     fault) and everything is still removed.
# No process of the test survives any of them.  Needs root (mount); without
# it the test fails and says so.
. "${abs_top_srcdir}/tests/integration/lib.sh"
. "${abs_top_srcdir}/tests/fault/fault_lib.sh"

mnt=$T/small
mkdir "$mnt"
mount -t tmpfs -o size=64k,nr_inodes=32 perch-fault "$mnt" 2>"$T/mount.err" ||
	fail "cannot mount a tmpfs for this test (needs root and CAP_SYS_ADMIN): $(cat "$T/mount.err")"
unmount() { umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || :; }
add_cleanup unmount

# step NAME COMMAND: a workflow of one local step.
step() {
	printf '{"pipeline":[{"steps":[{"name":"%s","uuid":"u1","type":"commands","image":"sh","commands":["%s"],"environment":{"PERCH_TEST_MARK":"%s"},"on_success":true}]}]}\n' \
		"$1" "$2" "$PERCH_TEST_MARK"
}
# expect_clean: nothing in the tmpfs but the fillers.
expect_clean() {
	left=$(ls -A "$mnt" | grep -v '^filler' || :)
	[ -z "$left" ] || { ls -la "$mnt"; fail "$1: left behind in the temp dir: $left"; }
	expect_no_marked
}
run_local() {
	run_bounded 60 --backend local --backend-local-temp-dir "$mnt" run "$@"
}

# 1. Full: blocks (dd stops at ENOSPC), then inodes.
dd if=/dev/zero of="$mnt/filler" bs=4096 2>/dev/null || :
i=0
while touch "$mnt/filler-$i" 2>/dev/null; do i=$((i + 1)); done
[ "$(df -P "$mnt" | awk 'NR == 2 { print $4 }')" -eq 0 ] || fail "the tmpfs has blocks left"
[ "$(df -Pi "$mnt" | awk 'NR == 2 { print $4 }')" -eq 0 ] || fail "the tmpfs has inodes left"
step build "echo hello" >"$T/wf.json"
run_local --result "$T/result.json" "$T/wf.json"
expect_ended "a full temp dir"
expect_rc 3 "a full temp dir"
expect_lines 1 'No space left on device' "$T/err"
if grep -v '^perch: ' "$T/err" | grep -q .; then
	cat "$T/err"
	fail "stray output on stderr"
fi
jq_check '.status == "error" and .steps[0].skipped' "$T/result.json"
expect_clean "a full temp dir"

# 2. Inodes free again, blocks still full.
rm -f "$mnt"/filler-*
run_local "$T/wf.json"
expect_ended "a temp dir without free blocks"
expect_rc 0 "a temp dir without free blocks"
expect_clean "a temp dir without free blocks"

# 3. Some room, and a step that wants more.
rm -f "$mnt/filler"
dd if=/dev/zero of="$mnt/filler" bs=4096 count=8 2>/dev/null
step big "head -c 1048576 /dev/zero >big.bin" >"$T/big.json"
run_local "$T/big.json"
expect_ended "a step that fills the temp dir"
expect_rc 1 "a step that fills the temp dir"
expect_grep 'No space left on device' "$T/out"
expect_clean "a step that fills the temp dir"
