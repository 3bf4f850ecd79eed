"""Persistent chat: the XCP Router, the Text Conference Manager, the chat protocol and client."""
