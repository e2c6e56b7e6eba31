"""Keys: the keyring that encrypts personal identifiers and signs tokens, and its rotation."""
