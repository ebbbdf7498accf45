"""The operator desktop's live feed: one's own agent and one's own calls."""
