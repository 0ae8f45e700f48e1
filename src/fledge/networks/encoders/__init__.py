"""Observation encoders of a network body: layout of the flat row, vector preprocessing, visual, entity, goal."""
