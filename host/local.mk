# The perch program.  Its logic lives in a convenience library so that the
# unit tests link exactly the code the binary runs.
noinst_LTLIBRARIES += host/libperchhost.la
host_libperchhost_la_SOURCES = \
	host/util.c host/util.h \
	host/ctx.c host/ctx.h
host_libperchhost_la_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(LIBCONFIG_CFLAGS) $(LTDLINCL)
host_libperchhost_la_LIBADD = $(JSONC_LIBS) $(LIBCONFIG_LIBS) $(LIBLTDL)

bin_PROGRAMS += host/perch
host_perch_SOURCES = host/main.c
host_perch_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(LIBCONFIG_CFLAGS) $(LTDLINCL)
host_perch_LDADD = host/libperchhost.la
