#!/bin/sh
# No init system in a container: a package's post-install script starts no service.
exit 101
