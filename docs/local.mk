# docs: the man pages and the plugin author's guide, and the fragments of
# the rest of the plugin author kit: the conformance tool, its tests, the
# ABI check.  The template is installed beside the guide, ready to copy.
dist_man_MANS += \
	docs/man/perch.1 \
	docs/man/perch.conf.5 \
	docs/man/perch-plugin.7 \
	docs/man/perch-conformance.1
dist_doc_DATA += docs/plugin-guide.md
plugintemplatedir = $(docdir)/plugin-template
dist_plugintemplate_DATA = \
	examples/plugin-template/README.md \
	examples/plugin-template/Makefile \
	examples/plugin-template/template.c

include tools/conformance/local.mk
include tests/conformance/local.mk
include sdk/abi/local.mk
