"""The live WebSocket: authenticated at the handshake, closed when its session ends."""
