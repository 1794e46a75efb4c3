# Convenience targets; each calls the script the README documents.
.PHONY: setup demo test
setup:
	bash tools/setup.sh
demo:
	bash tools/demo.sh
test:
	bash tools/test.sh
