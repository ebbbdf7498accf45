"""Shared by every test: tests/ is on sys.path (pytest inserts a root conftest's directory),
so helper modules such as shared_testdata import by name."""
