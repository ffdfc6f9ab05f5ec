"""The stage5 commands, one module per help panel.

Each module registers its commands on the app of `stage5cli.cli.app` and imports only from there
and from the core; no command module imports another (tests/test_import_cycles.py checks it).
`stage5cli.cli` imports them in workflow order, which is the order of the help panels.
"""
