"""callwarden: a self-hosted contact-center platform for home-based operators."""

__version__ = "0.1.0"
