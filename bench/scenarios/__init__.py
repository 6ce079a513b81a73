"""Scenarios against the gateway, one file each: see bench.scenario for what a file defines."""
