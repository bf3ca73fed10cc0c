"""The workspace's pages, one module per page (thin: they call the domain services)."""
