"""ML-Agents' wire protocol: the .proto files and the Python code generated from them (`make protocol`)."""
