# runtime: perch run
host_libperchhost_la_SOURCES += \
	host/runtime.c host/runtime.h \
	host/result.c \
	host/cmd_run.c
