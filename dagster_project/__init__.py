"""Triangulate."""
