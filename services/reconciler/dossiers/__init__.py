"""Reading one dossier's whole story: its state, steps, desk reports and discrepancies."""
