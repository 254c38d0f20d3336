"""Synthetic data generators for demos and tests (documents that look like real inputs, with their ground truth)."""
