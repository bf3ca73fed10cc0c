"""Who may call doisoat (API keys kept hashed) and what they did (the audit log)."""
