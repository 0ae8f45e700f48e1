"""fledge: reinforcement-learning trainers compatible with ML-Agents' configs, results and models."""

__version__ = "0.1.0"
