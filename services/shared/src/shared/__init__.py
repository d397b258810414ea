"""Infrastructure every service uses. Nothing here knows about one service's domain."""
