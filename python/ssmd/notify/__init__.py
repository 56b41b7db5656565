"""``ssmd notify``: signal fires routed to ntfy (docs/notify.md)."""
