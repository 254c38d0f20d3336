"""Engines: the machine-learning work behind localcloud's services, free of AWS and HTTP concerns."""
