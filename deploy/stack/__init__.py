"""The local (no-Docker) stack: settings, server checks, the gateway config, the processes."""
