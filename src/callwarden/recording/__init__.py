"""Recordings: the sealed recorder, its catalogue, retention and purge, search and playback
(docs/recording.md)."""
