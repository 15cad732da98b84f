"""Adapters that keep runs and artifacts."""
