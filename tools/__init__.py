"""Developer tools behind Makefile targets (`make build`'s bytecode step, `make sam-local`)."""
