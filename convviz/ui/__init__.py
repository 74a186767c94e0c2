"""Qt widgets: one module per panel; they display state and forward user intent."""
