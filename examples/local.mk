# examples: workflows the README and the tests run.
examplesdir = $(docdir)/examples
dist_examples_DATA = \
	examples/hello.json \
	examples/on-failure.json \
	examples/service.json \
	examples/secrets.json
