"""The WebSocket protocol the web server runs: uvicorn's sans-I/O one, with a safe shutdown.

At server shutdown, uvicorn 0.54's `WebSocketsSansIOProtocol.shutdown` sends a close frame on
every open connection. When the browser's own close is already under way (the connection is
CLOSING), websockets refuses a second close frame with `InvalidState`, the exception escapes
the server's shutdown, and the server stops with an error instead of cleanly. Here such a
connection is only closed: its close handshake has begun, and nothing more is owed to it.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def shutdown(self) -> None:
        if self.handshake_complete and not self.close_sent and self.conn.state is not State.OPEN:
            self.stop_keepalive()
            self.queue.put_nowait({"type": "websocket.disconnect", "code": 1012})
            self.transport.close()
            return
        super().shutdown()
