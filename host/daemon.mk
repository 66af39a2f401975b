# perch daemon: the long-running host (control socket, state directory,
# reload and hot swap of plugins, adoption after a restart) and its client
# commands.  Tests live in tests/daemon/.
host_libperchhost_la_SOURCES += \
	host/state.c host/state.h \
	host/daemon.c host/daemon.h \
	host/daemon_plugins.c \
	host/daemon_wf.c \
	host/daemon_adopt.c \
	host/daemon_ctl.c host/daemon_ctl.h \
	host/daemon_proto.c host/daemon_proto.h \
	host/client.c

dist_doc_DATA += docs/daemon-protocol.md
EXTRA_DIST += contrib/perch.service contrib/perch.conf.example bench/reload.sh

include tests/daemon/local.mk
