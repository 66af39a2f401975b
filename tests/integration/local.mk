# integration tests: shell scripts driving the installed perch
TESTS += \
	tests/integration/install.sh \
	tests/integration/run_dummy.sh \
	tests/integration/run_local.sh \
	tests/integration/bad_input.sh
EXTRA_DIST += \
	tests/integration/install.sh \
	tests/integration/run_dummy.sh \
	tests/integration/run_local.sh \
	tests/integration/bad_input.sh

# After a real `make install` (distcheck runs this with its own prefix):
# the installed perch lists the shipped plugins without any path set.
installcheck-local:
	PERCH_PLUGIN_PATH= PERCH_CONFIG=/nonexistent-perch.conf '$(DESTDIR)$(bindir)/perch' --config /dev/null backends > installcheck.out
	grep -q '^dummy ' installcheck.out && grep -q '^local ' installcheck.out
	rm -f installcheck.out
