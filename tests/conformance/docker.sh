#!/bin/sh
# perch-conformance on the installed docker backend with busybox steps,
# against the engine and the locally built image that .ci/docker.sh sets up.
#   PERCH_TEST_DOCKER_IMAGE    the step image (default perch-test/busybox:latest)
#   PERCH_TEST_DOCKER_OFFLINE  non-empty (the default): no public registry is
#                              reachable, so a missing image cannot be told
#                              from an unreachable registry; empty: check it
. "${abs_top_srcdir}/tests/integration/lib.sh"
. "${abs_top_srcdir}/tests/conformance/lib.sh"

plugin="$PERCH_TEST_INSTALLED_PLUGINDIR/docker.so"
[ -f "$plugin" ] || fail "$plugin is missing (the docker backend was not installed)"

if [ -n "${PERCH_TEST_DOCKER_OFFLINE-1}" ]; then
	conformance --image "${PERCH_TEST_DOCKER_IMAGE:-perch-test/busybox:latest}" \
		--skip missing-image="no registry reachable (PERCH_TEST_DOCKER_OFFLINE)" "$plugin"
	expect_all_pass 1
else
	conformance --image "${PERCH_TEST_DOCKER_IMAGE:-perch-test/busybox:latest}" "$plugin"
	expect_all_pass 0
fi
expect_line "PASS discover-resume"
expect_line "PASS cancel-wait"
