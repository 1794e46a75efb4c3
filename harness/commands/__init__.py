"""Subcommands of `harness`; each module registers itself (see harness.cli)."""
