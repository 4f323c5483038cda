"""Playlist generation over the embedding store."""
