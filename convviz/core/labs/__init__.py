"""The labs: ReLU, pooling, dropout, 1×1 convolutions (their numbers and words)."""
