"""cove's command-line client: a thin client of the daemon's Docker Engine API.

:mod:`cove.cli.main` holds the click group and entry point; each command family lives
in its own small module, imported only when one of its commands runs.
"""
