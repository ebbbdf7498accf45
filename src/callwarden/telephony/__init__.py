"""The SIP application: registrar, authentication policy, dial plan, B2BUA calls and CDRs."""
