# workflow part of the host (sources and their tests): the workflow JSON
# document, parsed into the SDK's perch_config and serialised back.
host_libperchhost_la_SOURCES += \
	host/workflow.h host/workflow_priv.h \
	host/workflow_arena.c host/workflow_text.c host/workflow_check.c \
	host/workflow_decode.c host/workflow_json.c host/workflow_emit.c

check_PROGRAMS += tests/unit/test_workflow_json
TESTS += tests/unit/test_workflow_json
tests_unit_test_workflow_json_SOURCES = tests/unit/test_workflow_json.c
tests_unit_test_workflow_json_CFLAGS = $(PERCH_UNIT_CFLAGS)
tests_unit_test_workflow_json_LDADD = $(PERCH_UNIT_LIBS) $(JSONC_LIBS)

# Good ones parse and round-trip; each bad one has its exact error in the test.
EXTRA_DIST += \
	tests/fixtures/workflows/woodpecker-example.json \
	tests/fixtures/workflows/every-field.json \
	tests/fixtures/workflows/services.json \
	tests/fixtures/workflows/unicode.json \
	tests/fixtures/workflows/bad-syntax.json \
	tests/fixtures/workflows/bad-empty.json \
	tests/fixtures/workflows/bad-top-level-array.json \
	tests/fixtures/workflows/bad-type-network.json \
	tests/fixtures/workflows/bad-type-pull.json \
	tests/fixtures/workflows/bad-type-env-value.json \
	tests/fixtures/workflows/bad-type-alias.json \
	tests/fixtures/workflows/bad-missing-uuid.json \
	tests/fixtures/workflows/bad-missing-name.json \
	tests/fixtures/workflows/bad-duplicate-uuid.json \
	tests/fixtures/workflows/bad-unknown-depends-on.json \
	tests/fixtures/workflows/bad-self-depends-on.json \
	tests/fixtures/workflows/bad-cycle.json \
	tests/fixtures/workflows/bad-nul-escape.json \
	tests/fixtures/workflows/bad-trailing-data.json
