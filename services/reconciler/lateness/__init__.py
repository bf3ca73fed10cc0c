"""Late dossiers: where the time went and whose step it was (contract §7)."""
