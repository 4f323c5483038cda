"""Sending playlists where people listen.

- ``dj``: the sonic DJ's decisions (what to queue next, given what played, what is
  queued and the embedding space), with no player behind it;
- ``mpd``: the MPD side (connection settings, path <-> URI mapping, a thin client
  over python-mpd2, imported lazily, and the DJ's event loop).

Nothing here imports beets; see ``docs/players.md``.
"""
