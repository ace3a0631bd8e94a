"""The `docschat` command line: on top of every other part."""
