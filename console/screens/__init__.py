"""The console's screens, one module each; app.py includes every router listed here, in this order, and
builds the navigation from their NAV entries."""

from console.screens import accounts, signin, today

SCREENS = (signin, today, accounts)
