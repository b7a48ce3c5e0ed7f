"""The headless agent: WebSocket client, stream relay, guard, state. Never imports Qt."""
