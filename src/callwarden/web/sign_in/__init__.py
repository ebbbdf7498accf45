"""Signing in and out, the MFA step and MFA enrolment, and one's own sessions."""
