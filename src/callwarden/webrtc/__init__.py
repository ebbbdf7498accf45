"""The browser phone: WebRTC terminated in the node with aiortc (ICE, DTLS-SRTP).

A signed-in operator's page opens one peer connection per web session (`BrowserPhone`); its
audio is relayed, as PCMU RTP over loopback, to and from a media-engine endpoint of whichever
call the browser answers. The browser is reached like a phone: while its peer connection is up,
the user has one more registered contact, a SIP user agent inside the node (`BrowserContacts`),
so queue offers, direct calls and monitoring ring it like any SIP phone and the first to answer
wins. The phone is bound to the web session that made it: a revoked session closes it at once.
docs/webrtc.md describes it.
"""
