"""Security services: password hashing and policy, sign-in, MFA, sessions, the audit log."""
