"""Generative adversarial networks: DCGAN (64×64 faces, optionally attribute-conditioned) and SRGAN (×4)."""
from facezoo.models.gan.dcgan import DCGAN, dcgan_discriminator, dcgan_generator  # noqa: F401
from facezoo.models.gan.srgan import (  # noqa: F401
    SRGAN, DepthToSpace, downscale, psnr, srgan_discriminator, srresnet_generator)
