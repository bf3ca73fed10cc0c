"""The directory (contract §3): units with their parents and successors, and the officers told."""
