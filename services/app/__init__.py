"""How doisoat is launched: the CLI, the ASGI assembly, the process wiring and the demo."""
