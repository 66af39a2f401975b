# sdk/abi: keeping the v1 ABI stable (see sdk/abi/README.md).
#
#  make check       sdk/abi/abi_consts: every v1.0 constant, struct size and
#                   member offset still holds under the current headers;
#                   sdk/abi/v1_0_template.la: a plugin built from the frozen
#                   v1.0 headers, which tests/conformance/abi_v1_0.sh loads
#                   into the current host and runs perch-conformance on.
#  make abi-check   (CI; needs abigail-tools) the anchor library built from
#                   the current headers against the committed baseline
#                   sdk/abi/perch-v1.abi: only additions at the end pass.
ABI_V1_0_FILES = \
	sdk/abi/v1.0/include/perch/perch.h \
	sdk/abi/v1.0/include/perch/abi.h \
	sdk/abi/v1.0/include/perch/types.h \
	sdk/abi/v1.0/include/perch/flags.h \
	sdk/abi/v1.0/include/perch/host.h \
	sdk/abi/v1.0/include/perch/backend.h \
	sdk/abi/v1.0/include/perch/capabilities.h \
	sdk/abi/v1.0/include/perch/layout.h
EXTRA_DIST += $(ABI_V1_0_FILES) sdk/abi/README.md sdk/abi/anchor.c sdk/abi/perch-v1.abi \
	sdk/abi/abi-check.sh sdk/abi/consts.inc $(ABI_RULE_TESTS)
# Canned abidiff reports for tests/conformance/abi_rule.sh.
ABI_RULE_TESTS = \
	sdk/abi/rule-tests/ok-step-append.4.txt \
	sdk/abi/rule-tests/ok-host-append.4.txt \
	sdk/abi/rule-tests/ok-state-int.4.txt \
	sdk/abi/rule-tests/ok-new-type.4.txt \
	sdk/abi/rule-tests/bad-step-middle.4.txt \
	sdk/abi/rule-tests/bad-state-bool.4.txt \
	sdk/abi/rule-tests/bad-kv-append.4.txt \
	sdk/abi/rule-tests/bad-type-change.4.txt \
	sdk/abi/rule-tests/bad-fnptr-change.4.txt \
	sdk/abi/rule-tests/bad-enum-value.4.txt \
	sdk/abi/rule-tests/bad-removed-var.12.txt

# The constants table, once per header set.
check_LTLIBRARIES += sdk/abi/libabirows_v1_0.la
sdk_abi_libabirows_v1_0_la_SOURCES = sdk/abi/consts_table.c sdk/abi/consts.h
sdk_abi_libabirows_v1_0_la_CPPFLAGS = -I$(top_srcdir)/sdk/abi/v1.0/include -I$(top_srcdir)/sdk/abi \
	-DPERCH_ABI_TABLE=perch_abi_rows_v1_0
check_PROGRAMS += sdk/abi/abi_consts
TESTS += sdk/abi/abi_consts
sdk_abi_abi_consts_SOURCES = sdk/abi/consts_check.c sdk/abi/consts_table.c sdk/abi/consts.h
sdk_abi_abi_consts_CPPFLAGS = -I$(top_srcdir)/sdk/include -I$(top_srcdir)/sdk/abi \
	-DPERCH_ABI_TABLE=perch_abi_rows_current
sdk_abi_abi_consts_LDADD = sdk/abi/libabirows_v1_0.la

# An old plugin: today's template, compiled against the frozen v1.0 headers
# only.  When the template starts to use something newer than v1.0, freeze
# a copy of its v1.0 source here instead.
check_LTLIBRARIES += sdk/abi/v1_0_template.la
sdk_abi_v1_0_template_la_SOURCES = examples/plugin-template/template.c
sdk_abi_v1_0_template_la_CPPFLAGS = -I$(top_srcdir)/sdk/abi/v1.0/include
sdk_abi_v1_0_template_la_CFLAGS = $(AM_CFLAGS) $(PLUGIN_CFLAGS)
sdk_abi_v1_0_template_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS) -module -avoid-version -rpath /nowhere

# The anchor: not libtool, no sanitizers, debug info for abidw.  Paths in
# the debug info are made relative so that the baseline names no machine.
ABI_ANCHOR_CFLAGS = -g -O0 -fPIC -shared -fvisibility=hidden \
	-fdebug-prefix-map=$(abs_top_srcdir)=.
ABIDW_FLAGS = --no-corpus-path --no-comp-dir-path --no-architecture
sdk/abi/anchor-current.so: $(srcdir)/sdk/abi/anchor.c $(perchinclude_HEADERS)
	$(AM_V_CC)$(MKDIR_P) sdk/abi && \
	$(CC) $(ABI_ANCHOR_CFLAGS) -I$(top_srcdir)/sdk/include -o $@ $(srcdir)/sdk/abi/anchor.c
sdk/abi/anchor-v1.0.so: $(srcdir)/sdk/abi/anchor.c $(ABI_V1_0_FILES)
	$(AM_V_CC)$(MKDIR_P) sdk/abi && \
	$(CC) $(ABI_ANCHOR_CFLAGS) -I$(top_srcdir)/sdk/abi/v1.0/include -o $@ $(srcdir)/sdk/abi/anchor.c
abi-check: sdk/abi/anchor-current.so
	abidw $(ABIDW_FLAGS) --out-file sdk/abi/anchor-current.abi sdk/abi/anchor-current.so
	$(SHELL) $(srcdir)/sdk/abi/abi-check.sh $(srcdir)/sdk/abi/perch-v1.abi sdk/abi/anchor-current.abi
# Rewrites the committed baseline from the frozen v1.0 headers; only ever
# needed when libabigail's format changes (the result must still pass).
abi-baseline: sdk/abi/anchor-v1.0.so
	abidw $(ABIDW_FLAGS) --out-file $(srcdir)/sdk/abi/perch-v1.abi sdk/abi/anchor-v1.0.so
CLEANFILES += sdk/abi/anchor-current.so sdk/abi/anchor-current.abi sdk/abi/anchor-v1.0.so
.PHONY: abi-check abi-baseline
