"""pytest plugin: collects scenarios as items (being written)."""
