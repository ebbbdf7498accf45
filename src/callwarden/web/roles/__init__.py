"""Roles: the built-in ones and custom roles made of grants the maker holds themselves."""
