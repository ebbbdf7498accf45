"""Wrap-up dispositions: the operator's disposition code and note of their own call."""
