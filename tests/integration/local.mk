# integration tests: shell scripts driving the installed perch
TESTS += \
	tests/integration/run_dummy.sh \
	tests/integration/bad_input.sh
EXTRA_DIST += \
	tests/integration/run_dummy.sh \
	tests/integration/bad_input.sh
