"""Work on trained models: BatchNorm re-estimation (and, next, folding and quantization)."""
