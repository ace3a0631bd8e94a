"""The HTTP edge: routes, WebSocket, security headers, OpenAPI and the operator endpoints."""
