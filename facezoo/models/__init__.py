"""Keras functional backbones, the DMTL model, the GANs (``facezoo.models.gan``) and the action-unit head
(``facezoo.models.au``)."""
from facezoo.models.dmtl import Dmtl, DmtlConfig, DatasetSpec, HeadSpec, dmtl  # noqa: F401
from facezoo.models import gan  # noqa: F401  (registers DCGAN, SRGAN, DepthToSpace for load_keras)
from facezoo.models import au  # noqa: F401  (registers the action-unit head's layers, loss and metrics)
from facezoo.models.alexnet import alexnet  # noqa: F401
from facezoo.models.efficientnet_lite import efficientnet_lite0, efficientnet_lite1, efficientnet_lite2  # noqa: F401
from facezoo.models.inception import inception  # noqa: F401
from facezoo.models.mobilenet_v2 import mobilenet_v2  # noqa: F401
from facezoo.models.resnet import resnet18, resnet34, resnet50  # noqa: F401
from facezoo.models.vgg import vgg16  # noqa: F401
from facezoo.models.registry import BACKBONES, register_backbone  # noqa: F401
from facezoo.models.face_trunk import FACEZOO_FACE, TRUNK_SPEC, face_embedding_model  # noqa: F401  (registers weights="facezoo-face")
from facezoo.preprocessing import PreprocessSpec, fit_to_input, prepare_input, preprocess_input  # noqa: F401
