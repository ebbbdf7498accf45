"""`/api/v1/sip`: the SIP edge's defences as admins see them (bans in force, counters)."""
