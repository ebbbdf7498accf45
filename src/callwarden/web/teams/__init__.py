"""Teams: listing, reading, creating and changing them (teams nest)."""
