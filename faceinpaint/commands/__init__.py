"""Thin command-line wrappers (``faceinpaint <command>``)."""
