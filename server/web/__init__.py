"""The only package that imports starlette: app factory, HTTP routes, WebSocket endpoints, hub."""
