"""The Fine-tune tab: train a new head (and more) on the user's own image folders."""
