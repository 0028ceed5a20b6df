"""The web console: server-rendered pages over the same service functions the API calls (no rule of its own)."""
