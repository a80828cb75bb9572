"""Facial action units with landmark-anchored attention (after EAC-Net, Li et al. 2017, 2018).

README section (for the lead to merge)
---------------------------------------

## Action units (designed and tested; no model shipped)

`facezoo.models.au` builds an action-unit (AU) detector in the manner of EAC-Net (Li, Abtahi, Zhu & Yin,
"EAC-Net: A Region-based Deep Enhancing and Cropping Approach for Facial Action Unit Detection", FG 2017;
extended in IEEE TPAMI 2018): on any facezoo trunk's feature map, each AU gets an attention map that is 1 at
points placed relative to the face's five landmarks and decays with distance; the features are enhanced as
`feature * (1 + attention)`, cropped (or attention-pooled) around each AU's two centres, and each AU has
its own small classifier and sigmoid. `au_attention_model("resnet18", input_shape=(112, 112, 3), ...)`
takes images and their landmarks (`{"image": ..., "landmarks": (N, 5, 2)}`, the detector's five points in
input pixels; `framing_landmarks(card framing, input size)` gives the mean points of a face aligned to a
model's framing) and returns one probability per AU; `AuBinaryCrossentropy` is the per-AU weighted loss for
their class imbalance (`au_class_weights` computes the weights from training labels) and `AuF1` / `AuAccuracy`
/ `au_report` the per-AU F1 and accuracy. Readers: `facezoo data convert bp4d|disfa` read BP4D-Spontaneous's
occurrence CSVs and DISFA's intensity files (`facezoo.data.bp4d`, `facezoo.data.disfa` document the layouts).

```python
from facezoo.models import au
net = au.au_attention_model("resnet18", input_shape=(112, 112, 3), trunk_kwargs={"width": 0.5},
                            feature_layer="conv3_block2_out")          # 14x14 map; 12 BP4D AUs by default
train_labels = au.au_targets(records)                               # (N, 12) of 0 / 1 / -1 (unknown)
pos_weight, au_weight = au.au_class_weights(train_labels)
net.compile("adam", loss=au.AuBinaryCrossentropy(pos_weight, au_weight), metrics=au.au_metrics())
net.fit({"image": images, "landmarks": landmarks}, train_labels)     # landmarks (N, 5, 2) in input pixels
```

**No AU model is shipped.** No AU-labelled data is available offline here, and the AU data sets (BP4D,
DISFA) are released only under signed licence agreements, so nothing could be trained or measured. The
head, the loss, the metrics and both readers are tested on synthetic data only (a tiny model learns AUs
that are bright blobs at landmark-anchored places); the AU centres below are our own placement for five
landmarks, not EAC-Net's own rules (which use brow and lip landmarks that five points lack), and have not
been validated on real AU data.

AU centres
----------

Each AU has two centres (its left and right instance, or two points either side of the midline), placed
from the five landmarks (left eye, right eye, nose tip, left and right mouth corners; ``FaceRecord``'s
order) in a frame that turns and scales with the face: ``u`` is the unit vector from the image-left eye to
the image-right eye, ``v`` is ``u`` turned 90 degrees towards the chin, and ``d`` the inter-ocular distance.
For a paired anchor (the eyes, the mouth corners) a centre is ``anchor + d * (inward * ±u + down * v)``,
``inward`` pointing towards the face's midline on each side; for a midline anchor (nose tip, mouth centre =
mean of the mouth corners) the two centres are ``anchor + d * (∓inward * u + down * v)``, ``inward`` then
being their distance from the midline. EAC-Net places its centres at offsets of a fraction of a "scale"
(the inter-ocular distance) from its landmarks (e.g. AU1 half a scale above the inner brow, AU6 one scale
below the eye, AU12/14/15 at the lip corners, AU17 below the lower lip); with no brow or lip landmarks we
move those places onto the eyes and mouth corners, using typical proportions of a frontal face (brows about
0.3 d above the eye centres, the mouth about 1 d below the eyes and 0.8 d wide):

| AU | name | anchor | inward | down | where |
| --- | --- | --- | --- | --- | --- |
| 1 | inner brow raiser | eyes | 0.20 | -0.50 | above the inner end of each brow |
| 2 | outer brow raiser | eyes | -0.25 | -0.45 | above the outer end of each brow |
| 4 | brow lowerer | eyes | 0.10 | -0.30 | inner brows (pulled down and together) |
| 5 | upper lid raiser | eyes | 0.00 | -0.12 | upper lids |
| 6 | cheek raiser | eyes | -0.10 | 0.45 | cheeks below and outside the eyes |
| 7 | lid tightener | eyes | 0.00 | 0.12 | lower lids |
| 9 | nose wrinkler | nose | 0.15 | -0.30 | both sides of the nose, above the tip |
| 10 | upper lip raiser | mouth corners | 0.25 | -0.15 | upper lip either side of its centre |
| 12 | lip corner puller | mouth corners | 0.00 | 0.00 | the lip corners |
| 14 | dimpler | mouth corners | -0.12 | 0.00 | just outside the lip corners |
| 15 | lip corner depressor | mouth corners | 0.00 | 0.15 | just below the lip corners |
| 17 | chin raiser | mouth corners | 0.25 | 0.45 | the chin boss below the lower lip |
| 20 | lip stretcher | mouth corners | -0.10 | 0.08 | outside and below the corners |
| 23 | lip tightener | mouth corners | 0.20 | 0.05 | the lips' red, either side |
| 24 | lip pressor | mouth corners | 0.30 | 0.00 | the lips near the centre |
| 25 | lips part | mouth centre | 0.10 | 0.00 | between the lips |
| 26 | jaw drop | mouth centre | 0.15 | 0.40 | below the mouth |

Attention: a feature cell at distance ``r`` (input pixels, from the cell's centre) from the nearer of an
AU's two centres gets ``max(0, 1 - r / (radius * d))`` (``decay="linear"``: EAC-Net's linear fall-off, which
there is 0.095 per feature pixel of Manhattan distance; here Euclidean and relative to the face's size) or
``exp(-r^2 / (2 (radius d / 2)^2))`` (``decay="gaussian"``). EAC-Net enhances several VGG stages and crops
each AU's centres from a later one; here one feature map (the trunk's output, or ``feature_layer``) is
enhanced and cropped: ``region="crop"`` samples a ``crop_size`` x ``crop_size`` grid spanning
``crop_extent * d`` around each centre (bilinear, zero outside the map), ``region="pool"`` takes the
attention-weighted mean of the enhanced features.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from facezoo.attributes import AU_NAMES, BP4D_AUS
from facezoo.errors import UsageError

# Landmark indices (FaceRecord order) of each anchor's two sides, and whether it is paired.
LEFT_EYE, RIGHT_EYE, NOSE, MOUTH_LEFT, MOUTH_RIGHT = range(5)
ANCHORS = {
    "eyes": ((LEFT_EYE,), (RIGHT_EYE,), True),
    "mouth": ((MOUTH_LEFT,), (MOUTH_RIGHT,), True),
    "nose": ((NOSE,), (NOSE,), False),
    "mouth_centre": ((MOUTH_LEFT, MOUTH_RIGHT), (MOUTH_LEFT, MOUTH_RIGHT), False),
}
# AU -> (anchor, inward, down), in inter-ocular distances; the table of the module docstring.
AU_REGIONS = {
    1: ("eyes", 0.20, -0.50),
    2: ("eyes", -0.25, -0.45),
    4: ("eyes", 0.10, -0.30),
    5: ("eyes", 0.00, -0.12),
    6: ("eyes", -0.10, 0.45),
    7: ("eyes", 0.00, 0.12),
    9: ("nose", 0.15, -0.30),
    10: ("mouth", 0.25, -0.15),
    12: ("mouth", 0.00, 0.00),
    14: ("mouth", -0.12, 0.00),
    15: ("mouth", 0.00, 0.15),
    17: ("mouth", 0.25, 0.45),
    20: ("mouth", -0.10, 0.08),
    23: ("mouth", 0.20, 0.05),
    24: ("mouth", 0.30, 0.00),
    25: ("mouth_centre", 0.10, 0.00),
    26: ("mouth_centre", 0.15, 0.40),
}
DECAYS = ("linear", "gaussian")
REGIONS = ("crop", "pool")
UNKNOWN_LABEL = -1  # label value of an AU that is not known for an example (masked out of loss and metrics)


def check_aus(aus, regions=None) -> tuple[int, ...]:
    """``aus`` as a tuple of FACS numbers, each with a region; raises ``UsageError`` naming the bad ones."""
    regions = AU_REGIONS if regions is None else regions
    try:
        aus = tuple(int(a) for a in aus)
    except (TypeError, ValueError):
        raise UsageError(f"aus must be FACS numbers such as {list(BP4D_AUS)}, got {aus!r}") from None
    if not aus:
        raise UsageError("aus must name at least one action unit")
    unknown = [a for a in aus if a not in regions]
    if unknown:
        raise UsageError(f"no region for action unit(s) {unknown}; AUs with a region: {sorted(regions)}")
    if len(set(aus)) != len(aus):
        raise UsageError(f"aus repeats an action unit: {list(aus)}")
    return aus


def region_tables(aus, regions=None):
    """Constant tables of the AU centres: selection ``(K, 2, 5)``, ``u`` and ``v`` coefficients ``(K, 2)``.

    A centre ``k, side`` is ``select[k, side] @ landmarks + d * (along[k, side] * u + down[k, side] * v)``.
    """
    regions = AU_REGIONS if regions is None else regions
    select = np.zeros((len(aus), 2, 5), np.float32)
    along = np.zeros((len(aus), 2), np.float32)
    down = np.zeros((len(aus), 2), np.float32)
    for k, au in enumerate(aus):
        anchor, inward, below = regions[au]
        if anchor not in ANCHORS:
            raise UsageError(f"AU{au}: anchor must be one of {sorted(ANCHORS)}, got {anchor!r}")
        left, right, paired = ANCHORS[anchor]
        for side, points in enumerate((left, right)):
            select[k, side, list(points)] = 1.0 / len(points)
        # Paired: the image-left side moves inwards along +u, the right along -u; midline: apart.
        along[k] = (inward, -inward) if paired else (-inward, inward)
        down[k] = below
    return select, along, down


def face_frame(landmarks):
    """``(u, v, d)`` of landmarks ``(B, 5, 2)``: the eye axis, its normal towards the chin, the eye distance."""
    landmarks = ops.cast(landmarks, "float32")
    axis = landmarks[:, RIGHT_EYE] - landmarks[:, LEFT_EYE]
    d = ops.sqrt(ops.sum(ops.square(axis), axis=-1) + 1e-6)
    u = axis / d[:, None]
    v = ops.stack([-u[:, 1], u[:, 0]], axis=-1)
    return u, v, d


@keras.saving.register_keras_serializable(package="facezoo")
class AuCentres(keras.layers.Layer):
    """Landmarks ``(B, 5, 2)`` -> AU centres ``(B, K, 2, 2)`` (x, y input pixels) and the face scale ``(B, 1)``.

    Args:
        aus: FACS numbers of the AUs, in output order.
        regions: optional ``{au: (anchor, inward, down)}`` replacing ``AU_REGIONS`` (see the module docstring).
    """

    def __init__(self, aus=BP4D_AUS, regions=None, **kwargs):
        super().__init__(**kwargs)
        self.regions = None if regions is None else {int(k): (str(v[0]), float(v[1]), float(v[2]))
                                                     for k, v in dict(regions).items()}
        self.aus = check_aus(aus, self.regions)
        self._select, self._along, self._down = region_tables(self.aus, self.regions)

    def call(self, landmarks):
        landmarks = ops.cast(landmarks, "float32")
        u, v, d = face_frame(landmarks)
        anchors = ops.einsum("ksl,blc->bksc", ops.convert_to_tensor(self._select), landmarks)
        along = ops.convert_to_tensor(self._along)[None, :, :, None]
        down = ops.convert_to_tensor(self._down)[None, :, :, None]
        offsets = along * u[:, None, None, :] + down * v[:, None, None, :]
        return anchors + d[:, None, None, None] * offsets, d[:, None]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.aus), 2, 2), (input_shape[0], 1)

    def get_config(self):
        regions = None if self.regions is None else {str(k): list(v) for k, v in self.regions.items()}
        return {**super().get_config(), "aus": list(self.aus), "regions": regions}


def _cell_centres(cells, pixels):
    """Input-pixel coordinates of the centres of ``cells`` feature cells spanning ``pixels`` input pixels."""
    return (ops.cast(ops.arange(cells), "float32") + 0.5) * (float(pixels) / ops.cast(cells, "float32")) - 0.5


def _to_cells(coordinate, cells, pixels):
    """Input-pixel coordinates -> feature-cell coordinates (the inverse of ``_cell_centres``)."""
    return (coordinate + 0.5) * (ops.cast(cells, "float32") / float(pixels)) - 0.5


@keras.saving.register_keras_serializable(package="facezoo")
class LandmarkAttention(keras.layers.Layer):
    """Per-AU attention maps on a feature map: ``[features, centres, scale]`` -> ``(B, h, w, K)`` in [0, 1].

    Args:
        image_size: ``(height, width)`` of the input image the centres are in.
        radius: where the weight reaches 0 (linear) or two standard deviations (gaussian), in inter-ocular
            distances.
        decay: ``"linear"`` or ``"gaussian"``.
    """

    def __init__(self, image_size, radius=0.6, decay="linear", **kwargs):
        super().__init__(**kwargs)
        if decay not in DECAYS:
            raise UsageError(f"LandmarkAttention: decay must be one of {DECAYS}, got {decay!r}")
        if not radius > 0:
            raise UsageError(f"LandmarkAttention: radius must be > 0, got {radius!r}")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.radius, self.decay = float(radius), decay

    def call(self, inputs):
        features, centres, scale = inputs
        h, w = ops.shape(features)[1], ops.shape(features)[2]
        ys = _cell_centres(h, self.image_size[0])
        xs = _cell_centres(w, self.image_size[1])
        cx = centres[:, None, None, :, :, 0]                  # (B, 1, 1, K, 2)
        cy = centres[:, None, None, :, :, 1]
        dist = ops.sqrt(ops.square(xs[None, None, :, None, None] - cx)
                        + ops.square(ys[None, :, None, None, None] - cy) + 1e-12)
        reach = (self.radius * scale)[:, :, None, None, None]  # (B, 1, 1, 1, 1)
        if self.decay == "linear":
            weight = ops.relu(1.0 - dist / reach)
        else:
            weight = ops.exp(-0.5 * ops.square(2.0 * dist / reach))
        return ops.cast(ops.max(weight, axis=-1), features.dtype)

    def compute_output_shape(self, input_shape):
        features, centres, _ = input_shape
        return tuple(features[:3]) + (centres[1],)

    def get_config(self):
        return {**super().get_config(), "image_size": list(self.image_size), "radius": self.radius,
                "decay": self.decay}


@keras.saving.register_keras_serializable(package="facezoo")
class AttentionPooling(keras.layers.Layer):
    """``[features (B, h, w, C), attention (B, h, w, K)]`` -> ``(B, K, C)``: per AU, the attention-weighted mean
    of the enhanced features ``features * (1 + attention)`` (0 where an AU's map is 0 everywhere)."""

    def call(self, inputs):
        features, attention = inputs
        weights = attention * (1.0 + attention)
        total = ops.sum(attention, axis=(1, 2))[:, :, None]
        return ops.einsum("bhwk,bhwc->bkc", weights, features) / (total + 1e-6)

    def compute_output_shape(self, input_shape):
        features, attention = input_shape
        return (features[0], attention[-1], features[-1])


@keras.saving.register_keras_serializable(package="facezoo")
class RegionCrop(keras.layers.Layer):
    """Crops of the enhanced features around each AU centre.

    ``[features (B, h, w, C), attention (B, h, w, K), centres (B, K, 2, 2), scale (B, 1)]`` ->
    ``(B, K, 2, size, size, C)``: for AU ``k``, ``features * (1 + attention[..., k])`` sampled bilinearly on a
    ``size`` x ``size`` grid spanning ``extent * scale`` input pixels, centred on each of its two centres
    (zero outside the feature map).

    Args:
        image_size: ``(height, width)`` of the input image the centres are in.
        size: crop side in samples.
        extent: crop side in inter-ocular distances.
    """

    def __init__(self, image_size, size=3, extent=0.6, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(size, int) and size >= 1):
            raise UsageError(f"RegionCrop: size must be a whole number >= 1, got {size!r}")
        if not extent > 0:
            raise UsageError(f"RegionCrop: extent must be > 0, got {extent!r}")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.size, self.extent = size, float(extent)

    def _weights(self, centre, scale, cells, pixels):
        """Bilinear weights ``(B, K, 2, size, cells)`` of the crop's samples along one axis."""
        steps = np.linspace(-0.5, 0.5, self.size) if self.size > 1 else np.zeros(1)
        offsets = ops.convert_to_tensor(steps.astype(np.float32)) * self.extent
        samples = centre[..., None] + offsets * scale[:, :, None, None]         # (B, K, 2, size) pixels
        samples = _to_cells(samples, cells, pixels)
        grid = ops.cast(ops.arange(cells), "float32")
        return ops.relu(1.0 - ops.abs(samples[..., None] - grid))

    def call(self, inputs):
        features, attention, centres, scale = inputs
        h, w = ops.shape(features)[1], ops.shape(features)[2]
        wy = ops.cast(self._weights(centres[..., 1], scale, h, self.image_size[0]), features.dtype)
        wx = ops.cast(self._weights(centres[..., 0], scale, w, self.image_size[1]), features.dtype)
        enhanced = features[:, :, :, None, :] * (1.0 + attention[..., None])    # (B, h, w, K, C)
        rows = ops.einsum("bksyh,bhwkc->bksywc", wy, enhanced)
        return ops.einsum("bksywc,bksxw->bksyxc", rows, wx)

    def compute_output_shape(self, input_shape):
        features, attention, _, _ = input_shape
        return (features[0], attention[-1], 2, self.size, self.size, features[-1])

    def get_config(self):
        return {**super().get_config(), "image_size": list(self.image_size), "size": self.size,
                "extent": self.extent}


@keras.saving.register_keras_serializable(package="facezoo")
class PerAuDense(keras.layers.Layer):
    """A separate Dense layer per AU: ``(B, K, D)`` -> ``(B, K, units)`` with kernel ``(K, D, units)``."""

    def __init__(self, units, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        k, d = input_shape[-2], input_shape[-1]
        self.kernel = self.add_weight(name="kernel", shape=(k, d, self.units), initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(k, self.units), initializer="zeros")

    def call(self, x):
        return self.activation(ops.einsum("bkd,kdu->bku", x, ops.cast(self.kernel, x.dtype))
                               + ops.cast(self.bias, x.dtype))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": keras.activations.serialize(self.activation)}


def au_attention_head(features, landmarks, *, image_size, aus=BP4D_AUS, regions=None, region="crop",
                      radius=0.6, decay="linear", crop_size=3, crop_extent=0.6, units=64, dropout=0.0,
                      activation="sigmoid", name="au"):
    """The EAC-Net-style AU head on a feature map (functional: takes and returns Keras tensors).

    Args:
        features: ``(B, h, w, C)`` feature map of the trunk.
        landmarks: ``(B, 5, 2)`` the five landmarks in input pixels (x, y; ``FaceRecord`` order).
        image_size: ``(height, width)`` of the input the landmarks are in.
        aus: FACS numbers, in output order (default the 12 BP4D AUs).
        regions: optional replacement of ``AU_REGIONS``.
        region: ``"crop"`` (EAC-Net's crops) or ``"pool"`` (attention-weighted pooling; lighter).
        radius, decay: the attention maps (``LandmarkAttention``).
        crop_size, crop_extent: the crops (``RegionCrop``).
        units: width of each AU's hidden layer.
        dropout: dropout rate before the logits.
        activation: ``"sigmoid"`` (probabilities, the output named ``name``) or None (logits).
        name: prefix of the layer names; the output layer's name.

    Returns:
        ``(B, K)`` AU probabilities (or logits).
    """
    if region not in REGIONS:
        raise UsageError(f"au_attention_head: region must be one of {REGIONS}, got {region!r}")
    if activation not in ("sigmoid", None):
        raise UsageError(f"au_attention_head: activation must be 'sigmoid' or None, got {activation!r}")
    aus = check_aus(aus, regions)
    centres, scale = AuCentres(aus, regions, name=f"{name}_centres")(landmarks)
    attention = LandmarkAttention(image_size, radius, decay, name=f"{name}_attention")([features, centres, scale])
    if region == "crop":
        crops = RegionCrop(image_size, crop_size, crop_extent, name=f"{name}_crops")(
            [features, attention, centres, scale])
        x = keras.layers.Reshape((len(aus), 2 * crop_size * crop_size * features.shape[-1]),
                                 name=f"{name}_crops_flat")(crops)
    else:
        x = AttentionPooling(name=f"{name}_pool")([features, attention])
    x = PerAuDense(units, activation="relu", name=f"{name}_fc")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    x = PerAuDense(1, name=f"{name}_logit")(x)
    logits = keras.layers.Reshape((len(aus),), name=f"{name}_logits" if activation else name)(x)
    if activation is None:
        return logits
    return keras.layers.Activation("sigmoid", name=name)(logits)


def au_attention_model(trunk="resnet18", *, input_shape=(112, 112, 3), feature_layer=None, trunk_kwargs=None,
                       aus=BP4D_AUS, name="au_attention", **head_kwargs):
    """An AU detector: a facezoo trunk, then ``au_attention_head`` on one of its feature maps.

    Args:
        trunk: a backbone name of ``facezoo.models.BACKBONES`` (built with ``include_top=False,
            pooling=None``) or a Keras model mapping images to a 4-D feature map.
        input_shape: ``(H, W, C)`` when ``trunk`` is a name (a model's own input shape is used otherwise).
        feature_layer: name of the trunk layer whose output is attended to (default the trunk's output);
            an earlier, larger map places the AU centres more finely.
        trunk_kwargs: more arguments of the backbone builder (``width``, ``weights``, ...).
        aus: FACS numbers of the AUs, in output order.
        name: the model's name.
        **head_kwargs: ``au_attention_head`` arguments (``region``, ``radius``, ``units``, ...).

    Returns:
        A functional ``keras.Model`` with inputs ``{"image": (B, H, W, C), "landmarks": (B, 5, 2)}`` and one
        output ``(B, K)``: AU probabilities (logits with ``activation=None``).
    """
    from facezoo.models.registry import BACKBONES
    if isinstance(trunk, str):
        if trunk not in BACKBONES:
            raise UsageError(f"unknown trunk {trunk!r}; known: {sorted(BACKBONES)}")
        trunk = BACKBONES[trunk](include_top=False, pooling=None, input_shape=input_shape, **(trunk_kwargs or {}))
    elif not isinstance(trunk, keras.Model):
        raise UsageError(f"trunk must be a backbone name or a keras.Model, got {type(trunk).__name__}")
    shape = tuple(trunk.input.shape[1:])
    if len(shape) != 3 or shape[0] is None or shape[1] is None:
        raise UsageError(f"the trunk's input must have a fixed (height, width, channels), got {shape}")
    if feature_layer is not None:
        try:
            layer = trunk.get_layer(feature_layer)
        except ValueError:
            raise UsageError(f"trunk {trunk.name!r} has no layer {feature_layer!r}") from None
        trunk = keras.Model(trunk.input, layer.output, name=f"{trunk.name}_to_{feature_layer}")
    if len(trunk.output.shape) != 4:
        raise UsageError(f"the trunk must give a 4-D feature map, got shape {tuple(trunk.output.shape)}; "
                         "build it with include_top=False, pooling=None")
    image = keras.Input(shape=shape, name="image")
    landmarks = keras.Input(shape=(5, 2), name="landmarks")
    out = au_attention_head(trunk(image), landmarks, image_size=shape[:2], aus=aus, **head_kwargs)
    return keras.Model({"image": image, "landmarks": landmarks}, out, name=name)


def framing_landmarks(framing, input_size) -> np.ndarray:
    """``(5, 2)`` float32 landmarks of a ``preprocessing.FaceFraming`` in an ``(height, width)`` input: the
    landmarks to feed when a face was aligned to that framing and its own points are not known."""
    return np.asarray(framing.points(input_size), np.float32)


def au_targets(records, aus=BP4D_AUS) -> np.ndarray:
    """``(N, K)`` float32 labels of ``FaceRecord``s (``AU<n>`` keys, as the BP4D and DISFA readers give them) in
    ``aus`` order, ``UNKNOWN_LABEL`` where a record lacks an AU: the targets of ``AuBinaryCrossentropy``."""
    aus = check_aus(aus, {a: None for a in AU_NAMES})
    return np.array([[r.labels.get(f"AU{a}", UNKNOWN_LABEL) for a in aus] for r in records],
                    np.float32).reshape(-1, len(aus))


# Loss and metrics --------------------------------------------------------------------------------------


def au_class_weights(labels, max_weight=10.0):
    """Per-AU weights for ``AuBinaryCrossentropy`` from training labels ``(N, K)`` (``UNKNOWN_LABEL`` masked).

    Returns:
        ``(pos_weight, au_weight)``, float32 ``(K,)`` each: ``pos_weight`` = negatives / positives (how much
        more a positive counts than a negative, balancing each AU's two classes), and ``au_weight`` the
        inverse occurrence rate normalised to mean 1 (rarer AUs count more, as in JAA-Net, Shao et al. 2018);
        both clipped to ``[1 / max_weight, max_weight]``.

    Raises:
        UsageError: ``labels`` is not 2-D, or has values other than 0, 1 and ``UNKNOWN_LABEL``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise UsageError(f"au_class_weights: labels must be (examples, AUs), got shape {labels.shape}")
    bad = ~np.isin(labels, (0, 1, UNKNOWN_LABEL))
    if bad.any():
        raise UsageError(f"au_class_weights: labels must be 0, 1 or {UNKNOWN_LABEL} (unknown), got "
                         f"{sorted(set(labels[bad].tolist()))[:5]}")
    known = labels != UNKNOWN_LABEL
    positives = ((labels == 1) & known).sum(0).astype(np.float64)
    negatives = ((labels == 0) & known).sum(0).astype(np.float64)
    low, high = 1.0 / max_weight, max_weight
    pos_weight = np.clip(negatives / np.maximum(positives, 1.0), low, high)
    rate = np.maximum(positives, 1.0) / np.maximum(positives + negatives, 1.0)
    au_weight = (1.0 / rate) / np.mean(1.0 / rate)
    return pos_weight.astype(np.float32), np.clip(au_weight, low, high).astype(np.float32)


@keras.saving.register_keras_serializable(package="facezoo")
class AuBinaryCrossentropy(keras.losses.Loss):
    """Per-AU weighted binary cross-entropy, masking unknown labels.

    Per example: the mean over its known AUs of ``au_weight[k] * (-pos_weight[k] * y log p - (1 - y) log(1 - p))``
    (0 for an example with no known AU); labels ``(B, K)`` are 0, 1 or negative (unknown, e.g.
    ``UNKNOWN_LABEL``).

    Args:
        pos_weight: ``(K,)`` weight of positives (default 1: plain cross-entropy); see ``au_class_weights``.
        au_weight: ``(K,)`` weight of each AU (default 1).
        from_logits: predictions are logits (``au_attention_head(activation=None)``) rather than probabilities.
    """

    def __init__(self, pos_weight=None, au_weight=None, from_logits=False, name="au_bce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pos_weight = None if pos_weight is None else [float(w) for w in np.ravel(pos_weight)]
        self.au_weight = None if au_weight is None else [float(w) for w in np.ravel(au_weight)]
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)), "float32")
        known = ops.cast(y_true >= 0, "float32")
        y = ops.clip(y_true, 0.0, 1.0)
        pos = 1.0 if self.pos_weight is None else ops.convert_to_tensor(np.float32(self.pos_weight))
        if self.from_logits:
            log_p, log_not_p = -ops.softplus(-y_pred), -ops.softplus(y_pred)
        else:
            p = ops.clip(y_pred, 1e-7, 1.0 - 1e-7)
            log_p, log_not_p = ops.log(p), ops.log(1.0 - p)
        loss = -(pos * y * log_p + (1.0 - y) * log_not_p)
        if self.au_weight is not None:
            loss = loss * ops.convert_to_tensor(np.float32(self.au_weight))
        return ops.sum(loss * known, axis=-1) / ops.maximum(ops.sum(known, axis=-1), 1.0)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight, "au_weight": self.au_weight,
                "from_logits": self.from_logits}


class _AuCounts(keras.metrics.Metric):
    """Running true/false positive/negative counts per AU over known labels (base of ``AuF1``, ``AuAccuracy``)."""

    def __init__(self, num_aus, index=None, threshold=0.5, from_logits=False, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_aus, self.threshold, self.from_logits = int(num_aus), float(threshold), bool(from_logits)
        if index is not None and not 0 <= int(index) < self.num_aus:
            raise UsageError(f"{type(self).__name__}: index must be in 0-{self.num_aus - 1}, got {index!r}")
        self.index = None if index is None else int(index)
        self.counts = {k: self.add_variable(shape=(self.num_aus,), initializer="zeros", name=k)
                       for k in ("tp", "fp", "fn", "tn")}

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = ops.cast(y_pred, "float32")
        y_true = ops.cast(ops.reshape(y_true, ops.shape(y_pred)), "float32")
        cut = float(np.log(self.threshold / (1 - self.threshold))) if self.from_logits else self.threshold
        known = ops.cast(y_true >= 0, "float32")
        pred = ops.cast(y_pred > cut, "float32")
        true = ops.cast(y_true > 0.5, "float32")
        for key, value in (("tp", pred * true), ("fp", pred * (1 - true)), ("fn", (1 - pred) * true),
                           ("tn", (1 - pred) * (1 - true))):
            self.counts[key].assign_add(ops.sum(value * known, axis=0))

    def reset_state(self):
        for v in self.counts.values():
            v.assign(ops.zeros_like(v))

    def _per_au(self):
        raise NotImplementedError

    def result(self):
        values = self._per_au()
        return ops.mean(values) if self.index is None else values[self.index]

    def get_config(self):
        return {**super().get_config(), "num_aus": self.num_aus, "index": self.index, "threshold": self.threshold,
                "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="facezoo")
class AuF1(_AuCounts):
    """F1 of the positive class per AU over known labels: one AU's (``index``) or the mean over AUs (EAC-Net's
    headline)."""

    def _per_au(self):
        tp, fp, fn = self.counts["tp"], self.counts["fp"], self.counts["fn"]
        return ops.divide_no_nan(2 * tp, 2 * tp + fp + fn)


@keras.saving.register_keras_serializable(package="facezoo")
class AuAccuracy(_AuCounts):
    """Accuracy per AU over known labels: one AU's (``index``) or the mean over AUs."""

    def _per_au(self):
        c = self.counts
        return ops.divide_no_nan(c["tp"] + c["tn"], c["tp"] + c["tn"] + c["fp"] + c["fn"])


def au_metrics(aus=BP4D_AUS, per_au=True, **kwargs) -> list:
    """Keras metrics for ``compile``: mean F1 and accuracy, and (``per_au``) each AU's, named ``f1_AU12`` etc."""
    aus = check_aus(aus, {a: None for a in AU_NAMES})
    out = [AuF1(len(aus), name="mean_f1", **kwargs), AuAccuracy(len(aus), name="mean_accuracy", **kwargs)]
    if per_au:
        for i, au in enumerate(aus):
            out += [AuF1(len(aus), i, name=f"f1_AU{au}", **kwargs),
                    AuAccuracy(len(aus), i, name=f"accuracy_AU{au}", **kwargs)]
    return out


def au_report(labels, probabilities, aus=BP4D_AUS, threshold=0.5) -> dict:
    """Per-AU metrics over a whole evaluation set (numpy), unknown labels (negative) left out.

    Returns:
        ``{"AU<n>": {"n", "f1", "accuracy", "positive_rate", "predicted_rate"}, ..., "mean_f1", "mean_accuracy"}``;
        an AU with no known label has ``n`` 0 and NaN metrics, left out of the means.
    """
    labels, probabilities = np.asarray(labels), np.asarray(probabilities, np.float64)
    aus = check_aus(aus, {a: None for a in AU_NAMES})
    if labels.shape != probabilities.shape or labels.ndim != 2 or labels.shape[1] != len(aus):
        raise UsageError(f"au_report: labels {labels.shape} and probabilities {probabilities.shape} must both "
                         f"be (examples, {len(aus)})")
    out, f1s, accs = {}, [], []
    for k, au in enumerate(aus):
        known = labels[:, k] >= 0
        y, pred = labels[known, k] > 0.5, probabilities[known, k] > threshold
        n = int(known.sum())
        if n == 0:
            out[f"AU{au}"] = {"n": 0, "f1": float("nan"), "accuracy": float("nan"),
                              "positive_rate": float("nan"), "predicted_rate": float("nan")}
            continue
        tp, fp, fn = int(np.sum(pred & y)), int(np.sum(pred & ~y)), int(np.sum(~pred & y))
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
        acc = float(np.mean(pred == y))
        out[f"AU{au}"] = {"n": n, "f1": f1, "accuracy": acc, "positive_rate": float(y.mean()),
                          "predicted_rate": float(pred.mean())}
        f1s.append(f1)
        accs.append(acc)
    out["mean_f1"] = float(np.mean(f1s)) if f1s else float("nan")
    out["mean_accuracy"] = float(np.mean(accs)) if accs else float("nan")
    return out
