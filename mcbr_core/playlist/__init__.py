"""Playlist generation over the embedding store.

- ``base``: plain data (``Track``, ``Constraints``, ``Playlist``, ``PlaylistRequest``) and
  the ``PlaylistStrategy`` protocol;
- ``space``: the embedding space a strategy searches (vectors, candidates, metadata);
- ``strategies``: the built-in modes ``radio``, ``path``, ``cluster`` and ``signature``,
  registered through the ``register_playlist_strategies`` hook;
- ``constraints``: caps, limits, transition costs (tempo, key) and the smooth order;
- ``generate``: runs a strategy and enforces the constraints on what it returns;
- ``kmeans``, ``naming``, ``m3u``, ``settings``: clustering, names, playlist files, config.

Nothing here imports beets; see ``docs/playlists.md``.
"""
