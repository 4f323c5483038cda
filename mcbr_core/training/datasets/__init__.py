"""Dataset loaders, each in its real on-disk layout."""
