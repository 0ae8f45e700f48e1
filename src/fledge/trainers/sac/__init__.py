"""Soft Actor-Critic (ML-Agents 1.1.0 compatible settings and stats; see trainer.py)."""
