"""Domain functions behind the HTTP routes, and the wire schemas shared with the client."""
