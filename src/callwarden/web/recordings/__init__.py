"""`/api/v1/recordings`, `/api/v1/playback`, `/api/v1/legal-holds`, `/api/v1/retention-policies`:
finding, listening to, downloading, annotating, holding and deleting recordings (docs/api.md,
docs/recording.md)."""

from callwarden.web.recordings.routes import recordings_routers

__all__ = ["recordings_routers"]
