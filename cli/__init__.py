"""`dts`, the command-line client of the dts REST API (docs/cli.md)."""
