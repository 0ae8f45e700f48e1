"""Learning from demonstrations: the `.demo` format (read and write) and behavioral cloning."""
