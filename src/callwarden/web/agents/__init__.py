"""Agents: an operator's own state, the live states of the teams one watches, and a
supervisor's forced changes (break, sign-out), every change audited."""
