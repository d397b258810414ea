"""The auth service: users, password hashes, and JWT access/refresh tokens."""
