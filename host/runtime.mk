# runtime: perch run (placeholder until the runtime lands)
host_libperchhost_la_SOURCES += host/cmd_run.c
