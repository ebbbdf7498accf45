"""`/api/v1/trunks`: the SIP carriers, their numbers and outbound routes (dial-plan patterns)."""
