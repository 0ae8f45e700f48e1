"""Unity players over ML-Agents' wire protocol (communication version 1.5.0)."""
