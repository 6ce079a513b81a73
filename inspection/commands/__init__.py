"""The scanner side's commands: one module each, each with `register(subparsers)` setting `func`."""
