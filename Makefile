# Convenience targets; each calls the script the README documents.
.PHONY: setup demo test mutants
setup:
	bash tools/setup.sh
demo:
	bash tools/demo.sh
test:
	bash tools/test.sh
mutants:
	.venv/bin/python tools/mutants.py
