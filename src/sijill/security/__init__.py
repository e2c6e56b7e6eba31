"""Security and privacy: users, roles and area scopes, authentication, the audit chain,
encryption of personal identifiers, consent and purpose, pseudonymised exports."""
