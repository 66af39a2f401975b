# The installed SDK: headers and pkg-config file.  Header-only ABI.
perchincludedir = $(includedir)/perch
perchinclude_HEADERS = \
	sdk/include/perch/perch.h \
	sdk/include/perch/abi.h \
	sdk/include/perch/types.h \
	sdk/include/perch/flags.h \
	sdk/include/perch/host.h \
	sdk/include/perch/backend.h \
	sdk/include/perch/capabilities.h \
	sdk/include/perch/layout.h
pkgconfig_DATA = sdk/perch.pc
EXTRA_DIST += sdk/perch.pc.in
