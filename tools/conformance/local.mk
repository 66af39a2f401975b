# tools/conformance: perch-conformance, the plugin author's test driver.  It
# links the host library so that it opens, validates and configures a
# plugin exactly as perch does (loader, flags, contexts, host table).
bin_PROGRAMS += tools/conformance/perch-conformance
tools_conformance_perch_conformance_SOURCES = \
	tools/conformance/conformance.h \
	tools/conformance/main.c \
	tools/conformance/harness.c \
	tools/conformance/profile.c \
	tools/conformance/elfsyms.c \
	tools/conformance/check_entry.c \
	tools/conformance/check_steps.c \
	tools/conformance/check_concurrency.c \
	tools/conformance/check_resume.c
tools_conformance_perch_conformance_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(LIBCONFIG_CFLAGS) $(LTDLINCL)
tools_conformance_perch_conformance_LDADD = host/libperchhost.la
