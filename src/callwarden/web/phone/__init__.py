"""The browser phone's signalling WebSocket (`/api/v1/phone`); the phone itself is
`callwarden.webrtc`."""
