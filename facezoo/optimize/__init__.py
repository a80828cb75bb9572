"""Work on trained models: BatchNorm re-estimation and folding, the flip test (quantization lives with the
exporters)."""
from facezoo.optimize.fold import fold_batch_norm, foldable_pairs, inference_network  # noqa: F401
from facezoo.optimize.flip import flip_test_network  # noqa: F401
