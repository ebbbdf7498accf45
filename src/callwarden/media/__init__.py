"""RTP media: packets, G.711, DTMF, endpoints with symmetric latching, bridges and the mixer.

A protocol library: it imports nothing else of callwarden. The telephony layer talks to
:class:`callwarden.media.engine.MediaEngine` only.
"""
