from order_command.models import metadata
from shared.migrations import run_env

run_env(metadata)
