"""Users: listing, reading, creating and changing them, their role and whether they are enabled."""
