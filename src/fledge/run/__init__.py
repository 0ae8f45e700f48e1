"""One training run's life on disk: its seed (seeds), its folder (folder), its status and checkpoints (lifecycle)."""
