"""High availability: the Server Recovery Manager's state transitions and its monitor."""
