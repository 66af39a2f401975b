# host core: config file, flags, loader, host table.
host_libperchhost_la_SOURCES += \
	host/conf.c host/conf.h \
	host/flags.c host/flags.h \
	host/loader.c host/loader.h \
	host/hosttable.c
host_libperchhost_la_LIBADD += -ldl
host_libperchhost_la_SOURCES += \
	host/app.c host/app.h \
	host/help.c \
	host/cmd_backends.c
