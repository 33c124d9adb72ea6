"""The `orderdesk` command: a client of the gateway for the desk and the operators (above the runtime)."""
