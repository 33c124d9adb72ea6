from orderdesk.migrations import run_env
from services.returns.store import metadata

run_env(metadata)
