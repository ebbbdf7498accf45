"""SIP protocol library (RFC 3261 and friends), sans-IO where possible.

Modules own one concern each: ``errors`` (typed errors with wire meaning), ``uri`` (SIP and absolute
URIs), ``headers`` (structured header values), ``message`` (requests, responses, parsing, framing),
``validation`` (the application-level checks of RFC 3261 8.2). Import from the modules directly;
this package re-exports nothing so that importing one layer never drags in another.
"""
