"""The Text Conference (persistent chat) tables in an external database."""
