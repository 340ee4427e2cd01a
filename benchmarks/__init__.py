"""Reproducible measurements of voxgate, each writing a report."""
