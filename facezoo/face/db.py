"""``FaceDB``: a gallery of known people's face embeddings — enroll, remove, search top-k, identify, save/load.

    import facezoo
    from facezoo.face.db import FaceDB
    model = facezoo.load("verify_face")
    db = FaceDB(model)
    db.enroll("Ada", ["ada1.jpg", "ada2.jpg"])         # photos (detect + align) or crops; or embeddings=...
    db.search("who.jpg", k=3)                          # [{'name': 'Ada', 'distance': 0.62}, ...]
    db.identify("who.jpg")                             # {'name': 'Ada', 'distance': 0.62} or None (too far)
    db.save("people")                                  # people.npz (numbers) + people.json (names, model)
    db = FaceDB.load("people", model)                  # refuses a file made with another model or version

A person may have several embeddings; their distance to a query is the nearest one. Search is one matrix
product against every stored embedding plus a per-person minimum (``np.minimum.reduceat``) and a partial
sort, so 100k entries answer in milliseconds (``python benchmarks/facedb.py``). Files hold no pickles: the
embeddings and labels in ``.npz`` read with ``allow_pickle=False``, the rest in JSON, which records the
model's name, weights sha256 and embedding size — embeddings of another model (or another version of the
same one) are meaningless against this one, so ``load`` refuses them with a clear error.
"""
from __future__ import annotations

import json
import os

import numpy as np

from facezoo.errors import DataFormatError, MissingDataError, UsageError
from facezoo.files import atomic_write, sha256_of
from facezoo.inference.vectors import as_embeddings

FORMAT = "facezoo-facedb-1"


def _paths(path) -> tuple[str, str]:
    """``(npz, json)`` paths of a database called ``path`` (with or without either suffix)."""
    path = os.fspath(path)
    base = path[:-4] if path.endswith(".npz") else path[:-5] if path.endswith(".json") else path
    return base + ".npz", base + ".json"


class FaceDB:
    """Known people's embeddings for one verification model.

    Args:
        embedder: the ``FaceEmbedder`` whose embeddings are stored (needed to enroll or search with images, and
            for ``identify``'s default threshold); may be None when only embeddings are handled.
        identity: the model identity ``{"model", "sha256", "dim"}`` (default: ``embedder.identity``).
    """

    def __init__(self, embedder=None, *, identity: dict | None = None):
        if identity is None:
            if embedder is None:
                raise UsageError("FaceDB needs the embedder (a loaded verification model) or its identity")
            identity = embedder.identity
        self.embedder = embedder
        self.identity = {"model": str(identity["model"]), "sha256": str(identity["sha256"]),
                         "dim": int(identity["dim"])}
        self.dim = self.identity["dim"]
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self._vectors = np.zeros((16, self.dim), np.float32)
        self._labels = np.zeros(16, np.int32)
        self._n = 0
        self._groups = None  # (order, starts, label of each group), rebuilt after changes

    def __repr__(self):
        return f"FaceDB({self.identity['model']!r}, people={len(self)}, embeddings={self._n})"

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name) -> bool:
        return name in self._index

    @property
    def names(self) -> list[str]:
        """Enrolled names, in enrollment order."""
        return list(self._names)

    @property
    def n_embeddings(self) -> int:
        return self._n

    def embeddings_of(self, name: str) -> np.ndarray:
        """The stored embeddings of one person, (n, dim)."""
        if name not in self._index:
            raise UsageError(f"{name!r} is not enrolled")
        return self._vectors[:self._n][self._labels[:self._n] == self._index[name]].copy()

    # ------------------------------------------------------------------ changes
    def _embeddings(self, images, embeddings, detect, what) -> np.ndarray:
        if (images is None) == (embeddings is None):
            raise UsageError(f"{what}: give images or embeddings=..., not both or neither")
        if embeddings is not None:
            return as_embeddings(embeddings, self.dim, f"{what}: embeddings")
        if self.embedder is None:
            raise UsageError(f"{what}: this FaceDB has no embedder, so it can only take embeddings=...")
        return self.embedder.embed(images, detect=detect)

    def _grow(self, extra: int):
        need = self._n + extra
        if need > len(self._vectors):
            cap = max(need, 2 * len(self._vectors))
            vectors = np.zeros((cap, self.dim), np.float32)
            labels = np.zeros(cap, np.int32)
            vectors[:self._n], labels[:self._n] = self._vectors[:self._n], self._labels[:self._n]
            self._vectors, self._labels = vectors, labels

    def enroll(self, name: str, images=None, *, embeddings=None, detect="auto") -> int:
        """Adds face(s) of ``name`` (to those already enrolled under it); returns how many were added.

        Args:
            name: a non-empty string.
            images: one image or a list (paths, bytes, arrays, PIL) embedded with ``embedder.embed``.
            embeddings: instead of images, (n, dim) or (dim,) embeddings of this model.
            detect: passed to ``embed`` (``"auto"``: crops of the input size go straight in, photos are detected).
        """
        if not isinstance(name, str) or not name.strip():
            raise UsageError(f"enroll: name must be a non-empty string, got {name!r}")
        vectors = self._embeddings(images, embeddings, detect, f"enroll {name!r}")
        if len(vectors) == 0:
            raise UsageError(f"enroll {name!r}: no images or embeddings given")
        if name not in self._index:
            self._index[name] = len(self._names)
            self._names.append(name)
        self._grow(len(vectors))
        self._vectors[self._n:self._n + len(vectors)] = vectors
        self._labels[self._n:self._n + len(vectors)] = self._index[name]
        self._n += len(vectors)
        self._groups = None
        return len(vectors)

    def enroll_many(self, names, embeddings) -> int:
        """Bulk enrollment: one name per row of ``embeddings`` (n, dim); returns n."""
        names = list(names)
        vectors = as_embeddings(embeddings, self.dim, "enroll_many: embeddings")
        if len(names) != len(vectors):
            raise UsageError(f"enroll_many: {len(names)} names for {len(vectors)} embeddings")
        bad = next((n for n in names if not isinstance(n, str) or not n.strip()), None)
        if names and bad is not None:
            raise UsageError(f"enroll_many: names must be non-empty strings, got {bad!r}")
        labels = np.empty(len(names), np.int32)
        for i, name in enumerate(names):
            if name not in self._index:
                self._index[name] = len(self._names)
                self._names.append(name)
            labels[i] = self._index[name]
        self._grow(len(vectors))
        self._vectors[self._n:self._n + len(vectors)] = vectors
        self._labels[self._n:self._n + len(vectors)] = labels
        self._n += len(vectors)
        self._groups = None
        return len(vectors)

    def remove(self, name: str) -> int:
        """Forgets ``name`` and all its embeddings; returns how many embeddings were removed."""
        if name not in self._index:
            raise UsageError(f"remove: {name!r} is not enrolled ({len(self)} people are)")
        label = self._index.pop(name)
        labels = self._labels[:self._n]
        keep = labels != label
        removed = int((~keep).sum())
        vectors, labels = self._vectors[:self._n][keep], labels[keep]
        labels[labels > label] -= 1
        self._n = len(labels)
        self._vectors[:self._n], self._labels[:self._n] = vectors, labels
        del self._names[label]
        self._index = {n: i for i, n in enumerate(self._names)}
        self._groups = None
        return removed

    # ------------------------------------------------------------------ queries
    def _grouping(self):
        if self._groups is None:
            labels = self._labels[:self._n]
            order = np.argsort(labels, kind="stable")
            sorted_labels = labels[order]
            starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
            identity_order = bool(np.array_equal(order, np.arange(self._n)))
            gallery = self._vectors[:self._n]
            norms = np.einsum("ij,ij->i", gallery, gallery)
            self._groups = (None if identity_order else order, starts, sorted_labels[starts], norms)
        return self._groups

    def _squared_person_distances(self, q) -> np.ndarray:
        order, starts, group_labels, norms = self._grouping()
        squared = np.einsum("ij,ij->i", q, q)[:, None] + norms[None] - 2.0 * (q @ self._vectors[:self._n].T)
        if order is not None:
            squared = squared[:, order]
        per_group = np.minimum.reduceat(squared, starts, axis=1) if len(starts) < self._n else squared
        if np.array_equal(group_labels, np.arange(len(group_labels))):
            return per_group
        out = np.empty_like(per_group)
        out[:, group_labels] = per_group
        return out

    def person_distances(self, queries) -> np.ndarray:
        """Distance of each query embedding (Q, dim) to each enrolled person (nearest of their embeddings): (Q, P)."""
        q = as_embeddings(queries, self.dim, "queries")
        return np.sqrt(np.maximum(self._squared_person_distances(q), 0.0))

    def _queries(self, query, embeddings, detect):
        single = embeddings is None and not isinstance(query, (list, tuple)) and not (
            isinstance(query, np.ndarray) and query.ndim == 4)
        if embeddings is not None:
            single = np.ndim(embeddings) == 1
        return self._embeddings(query, embeddings, detect, "search"), single

    def search(self, query=None, k: int = 5, *, embeddings=None, detect="auto"):
        """The ``k`` nearest enrolled people of each query, nearest first.

        Args:
            query: one image or a list (embedded with the embedder), or pass ``embeddings=`` (dim,) / (Q, dim).
            k: how many people per query (fewer when fewer are enrolled).

        Returns:
            Per query a list of ``{"name", "distance"}``; a single query (one image, or one (dim,) vector)
            gives a single list.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise UsageError(f"search: k must be a positive int, got {k!r}")
        if not self._names:
            raise UsageError("search: the FaceDB is empty; enroll people first")
        vectors, single = self._queries(query, embeddings, detect)
        d = self._squared_person_distances(vectors)  # squared: same order, the square root only for the top k
        k = min(int(k), d.shape[1])
        top = np.argpartition(d, k - 1, axis=1)[:, :k] if k < d.shape[1] else np.tile(np.arange(d.shape[1]),
                                                                                     (len(d), 1))
        rows = np.arange(len(d))[:, None]
        top = top[rows, np.argsort(d[rows, top], axis=1, kind="stable")]
        best = np.sqrt(np.maximum(d[rows, top], 0.0))
        results = [[{"name": self._names[j], "distance": round(float(best[i, c]), 6)} for c, j in enumerate(top[i])]
                   for i in range(len(d))]
        return results[0] if single else results

    def identify(self, query=None, *, embeddings=None, threshold: float | None = None, detect="auto"):
        """The nearest enrolled person if within ``threshold`` (default: the model card's), else None.

        Returns ``{"name", "distance"}`` or None per query (a single one for a single query).
        """
        if threshold is None:
            if self.embedder is None:
                raise UsageError("identify: give threshold=..., this FaceDB has no embedder to take it from")
            threshold = self.embedder.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.floating)) or threshold < 0:
            raise UsageError(f"identify: threshold must be a number >= 0, got {threshold!r}")
        found = self.search(query, 1, embeddings=embeddings, detect=detect)
        single = isinstance(found[0], dict) if found else False
        per_query = [found] if single else found
        out = [best[0] if best[0]["distance"] <= threshold else None for best in per_query]
        return out[0] if single else out

    # ------------------------------------------------------------------ files
    def save(self, path) -> str:
        """Writes ``<path>.npz`` (embeddings, labels) and ``<path>.json`` (format, model, names); returns the latter."""
        npz, meta_path = _paths(path)
        folder = os.path.dirname(os.path.abspath(npz))
        if not os.path.isdir(folder):
            raise MissingDataError(f"save: folder {folder} does not exist")
        tmp = npz + ".tmp.npz"
        np.savez(tmp, embeddings=self._vectors[:self._n], labels=self._labels[:self._n])
        os.replace(tmp, npz)
        meta = {"format": FORMAT, "model": self.identity, "names": self._names, "count": self._n,
                "npz": os.path.basename(npz), "npz_sha256": sha256_of(npz)}
        atomic_write(meta_path, json.dumps(meta, indent=1) + "\n")
        return meta_path

    @staticmethod
    def model_name(path) -> str:
        """The name of the model a saved database was made with (read from its JSON)."""
        _npz, meta_path = _paths(path)
        if not os.path.isfile(meta_path):
            raise MissingDataError(f"{meta_path}: FaceDB file does not exist")
        try:
            with open(meta_path, encoding="utf-8") as f:
                return str(json.load(f)["model"]["model"])
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise DataFormatError(f"{meta_path}: not a facezoo FaceDB file ({type(e).__name__}: {e})") from None

    @classmethod
    def open(cls, path, directory: str | None = None) -> "FaceDB":
        """``load`` with the registered model the file names (``directory``: that model's folder instead)."""
        from facezoo.zoo import load
        return cls.load(path, load(cls.model_name(path), directory=directory))

    @classmethod
    def load(cls, path, embedder=None, *, identity: dict | None = None) -> "FaceDB":
        """Reads a database written by ``save``, refusing one made with a different model.

        Args:
            path: ``<path>``, ``<path>.npz`` or ``<path>.json``.
            embedder: the loaded model it must belong to (or give ``identity``).

        Raises:
            MissingDataError: a file is missing. DataFormatError: the files are not a facezoo FaceDB, do not
            match each other, or were made with another model name, version (weights sha256) or embedding size.
        """
        npz, meta_path = _paths(path)
        for f in (meta_path, npz):
            if not os.path.isfile(f):
                raise MissingDataError(f"{f}: FaceDB file does not exist")
        try:
            with open(meta_path, encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataFormatError(f"{meta_path}: not readable JSON ({e})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise DataFormatError(f"{meta_path}: not a facezoo FaceDB file (format {FORMAT!r} expected)")
        db = cls(embedder, identity=identity)
        stored = meta.get("model", {})
        for key, what in (("model", "model"), ("sha256", "model version (weights sha256)"),
                          ("dim", "embedding size")):
            if stored.get(key) != db.identity[key]:
                raise DataFormatError(
                    f"{meta_path}: made with {what} {str(stored.get(key))[:16]!r}, but the loaded model has "
                    f"{str(db.identity[key])[:16]!r}; its embeddings cannot be compared with this model's — "
                    "enroll the people again with this model")
        if meta.get("npz_sha256") != sha256_of(npz):
            raise DataFormatError(f"{npz}: does not match {meta_path} (sha256 differs): the two files were "
                                  "not saved together")
        try:
            with np.load(npz, allow_pickle=False) as data:
                vectors = np.asarray(data["embeddings"], np.float32)
                labels = np.asarray(data["labels"], np.int64)
        except (OSError, ValueError, KeyError) as e:
            raise DataFormatError(f"{npz}: not a FaceDB array file ({type(e).__name__}: {e})") from None
        names = meta.get("names")
        if (not isinstance(names, list) or len(set(names)) != len(names) or vectors.ndim != 2
                or vectors.shape[1:] != (db.dim,) or labels.shape != (len(vectors),)
                or meta.get("count") != len(vectors)
                or (len(labels) and (labels.min() < 0 or labels.max() >= len(names)))):
            raise DataFormatError(f"{npz}: arrays and {meta_path} disagree (names, counts, labels or shapes)")
        db._names = [str(n) for n in names]
        db._index = {n: i for i, n in enumerate(db._names)}
        db._grow(len(vectors))
        db._vectors[:len(vectors)], db._labels[:len(vectors)] = vectors, labels
        db._n = len(vectors)
        return db
