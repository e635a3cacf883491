"""Reusable ComponentResources, one capability per module (no stack logic here)."""
