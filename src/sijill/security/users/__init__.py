"""Users and signing in: accounts and their grants, passwords, tokens, sign-in (once, for the
API and the CLI alike), the CLI's saved session, and the routes and commands over them."""
