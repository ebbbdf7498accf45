"""The audit log over HTTP: query, export, verify; every read is itself audited."""
