"""Developer tools of the repository (not installed)."""
