"""How the agent is packaged: ``python -m installer build`` (see installer/README.md)."""
