"""Who is calling: principals and scopes, JWT verification, token formats, credentials."""
