"""Reliability and security: bad input, overload, faults, shutdown, auth, fuzzing."""
