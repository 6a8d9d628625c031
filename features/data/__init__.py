"""Order data: the canonical schema, importing it, storing it, generating it."""
