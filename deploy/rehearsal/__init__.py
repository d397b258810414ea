"""`make compose-check`: docker-compose.yml brought up for real with podman (docs/docker.md)."""
