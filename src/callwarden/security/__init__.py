"""Security services: password hashing; MFA, sessions, rate limits and the audit log to come."""
