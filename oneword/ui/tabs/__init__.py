"""One module per tab: its layout, and its handlers as plain functions of the workspace and the widgets' values."""
