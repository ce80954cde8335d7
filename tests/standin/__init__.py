"""A stand-in Media Server for tests: a real HTTP server on loopback answering documented ACI behaviour."""

from tests.standin.server import Fault, HashEntry, Standin, SyntheticDatabase

__all__ = ["Fault", "HashEntry", "Standin", "SyntheticDatabase"]
