"""`fledge sweep`: seeds x a search space of config keys, each trial a `fledge learn` run as a Ray task."""
