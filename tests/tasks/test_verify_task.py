"""Verification training pieces: semi-hard triplet loss and AM-softmax against numpy, the P x K sampler, models,
the Task under the generic Trainer, identity sources that keep evaluation people out."""
import numpy as np
import pytest
import tensorflow as tf

from facezoo.models.weights import load_keras
from facezoo.preprocessing import PreprocessSpec
from facezoo.tasks import verify as V
from tests.verify_helpers import lfw_layout, tiny_embedding_model


def _numpy_semi_hard(labels, e, margin):
    d = ((e[:, None] - e[None]) ** 2).sum(-1)
    losses = []
    for a in range(len(e)):
        negs = [n for n in range(len(e)) if labels[n] != labels[a]]
        for p in range(len(e)):
            if p == a or labels[p] != labels[a] or not negs:
                continue
            semi = [d[a, n] for n in negs if d[a, n] > d[a, p]]
            dn = min(semi) if semi else max(d[a, n] for n in negs)
            losses.append(max(d[a, p] - dn + margin, 0.0))
    return (np.mean(losses), np.mean(np.array(losses) > 0)) if losses else (0.0, 0.0)


@pytest.mark.parametrize("seed, margin", [(0, 0.2), (1, 0.5), (2, 1.0)])
def test_semi_hard_triplet_loss_matches_brute_force(seed, margin):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, 14)
    e = rng.normal(size=(14, 6))
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    loss, active = V.semi_hard_triplet_loss(labels, e.astype(np.float32), margin)
    want_loss, want_active = _numpy_semi_hard(labels, e, margin)
    assert float(loss) == pytest.approx(want_loss, rel=1e-4, abs=1e-6)
    assert float(active) == pytest.approx(want_active)


def test_triplet_loss_is_zero_for_separated_identities_and_without_pairs():
    e = np.repeat(np.eye(4, dtype=np.float32), 2, axis=0)  # each identity one point, others sqrt(2) away
    loss, active = V.semi_hard_triplet_loss(np.repeat(np.arange(4), 2), e, 0.2)
    assert float(loss) == 0.0 and float(active) == 0.0
    loss, _ = V.semi_hard_triplet_loss(np.arange(4), np.eye(4, dtype=np.float32), 0.2)  # no positive at all
    assert float(loss) == 0.0


def test_am_softmax_matches_its_formula():
    rng = np.random.default_rng(0)
    cos = rng.uniform(-1, 1, (5, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 5)
    got = V.am_softmax_loss(labels, cos, margin=0.3, scale=10.0).numpy()
    logits = 10.0 * (cos - 0.3 * np.eye(7)[labels])
    want = -logits[np.arange(5), labels] + np.log(np.exp(logits).sum(1))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_training_model_saves_loads_and_ships_the_embedding(tmp_path):
    model = V.training_model(V.embedding_model(tiny_embedding_model()), num_identities=5)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    out = model(x)
    assert out["embedding"].shape == (3, 128) and out["cosines"].shape == (3, 5)
    assert np.all(np.abs(out["cosines"].numpy()) <= 1 + 1e-5)
    model.save(tmp_path / "train.keras")
    again = load_keras(tmp_path / "train.keras")  # safe_mode=True: CosineLogits is registered
    np.testing.assert_allclose(again(x)["cosines"], out["cosines"], atol=1e-5)
    emb = V.embedding_of(again)
    assert emb.name == "embedding" and emb.output_shape == (None, 128)
    np.testing.assert_allclose(emb(x), out["embedding"], atol=1e-5)


def test_embedding_model_turns_a_trunk_into_unit_length_embeddings():
    import keras
    inputs = keras.Input((32, 32, 3))
    trunk = keras.Model(inputs, keras.layers.Conv2D(12, 3, strides=4)(inputs))  # a feature map
    emb = V.embedding_model(trunk, dim=128)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(np.linalg.norm(emb(x), axis=1), 1.0, atol=1e-5)
    regressor = keras.Model(inputs, keras.layers.Dense(128)(keras.layers.Flatten()(inputs)))  # not unit length
    np.testing.assert_allclose(np.linalg.norm(V.embedding_model(regressor)(x), axis=1), 1.0, atol=1e-5)
    already = tiny_embedding_model()
    assert len(V.embedding_model(already).layers) == len(already.layers)  # nothing added


def test_pk_sampler_gives_p_people_with_k_images():
    labels = np.r_[np.repeat(np.arange(6), 5), [6, 7, 7]]  # person 6 has one image, 7 has two
    sampler = V.PKSampler(labels, p=4, k=3, seed=0)
    assert all(len(g) >= 2 for g in sampler.groups) and len(sampler.groups) == 7  # person 6 left out
    batches = sampler.batches()
    for _ in range(30):
        idx = next(batches)
        assert len(idx) == 12
        people = labels[idx].reshape(4, 3)
        assert np.all(people == people[:, :1]) and len(set(people[:, 0])) == 4
        for row in idx.reshape(4, 3):
            assert len(set(row)) >= 2  # at least two different images of each person
    with pytest.raises(ValueError, match="at least 9 identities"):
        V.PKSampler(labels, p=9, k=2)


def test_pk_dataset_batches_and_pairs():
    rng = np.random.default_rng(0)
    spec = PreprocessSpec((32, 32))
    crops = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    records = [(f"img{i}.jpg", f"id{i // 4}") for i in range(24)]
    ds, names = V.pk_dataset(records, 3, 2, spec=spec, crops=crops)
    images, labels = next(iter(ds))
    assert images.shape == (6, 32, 32, 3) and images.dtype == tf.float32 and names == [f"id{i}" for i in range(6)]
    assert float(tf.reduce_min(images)) >= -1.0 and float(tf.reduce_max(images)) <= 1.0
    pairs = V.make_pairs(np.arange(24) // 4, 40)
    same = (pairs[:, 0] // 4) == (pairs[:, 1] // 4)
    np.testing.assert_array_equal(same, pairs[:, 2].astype(bool))
    assert pairs[:, 2].sum() == 20


def test_the_task_learns_to_separate_identities_under_the_trainer(tmp_path):
    """Identities differ by colour: a few steps of triplet + AM-softmax lower the loss, held-out pairs separate."""
    from facezoo.train.loop import TrainConfig, Trainer
    rng = np.random.default_rng(0)
    spec = PreprocessSpec((32, 32))
    colours = rng.integers(0, 256, (10, 3))
    labels = np.repeat(np.arange(10), 4)
    crops = np.clip(colours[labels][:, None, None, :] + rng.normal(0, 20, (40, 32, 32, 3)), 0, 255).astype(np.uint8)
    records = [(f"x{i}", f"id{labels[i]}") for i in range(40)]
    train, names = V.pk_dataset(records[:28], 4, 2, spec=spec, crops=crops[:28])
    val = {"held_out": V.pairs_dataset(V.make_pairs(labels[28:], 40, seed=1), spec=spec, crops=crops[28:])}
    task = V.VerifyTask(lambda: V.training_model(V.embedding_model(tiny_embedding_model()), len(names)),
                        am_weight=0.5)
    config = TrainConfig(epochs=3, steps_per_epoch=15, learning_rate=5e-3, reference_batch=8)
    trainer = Trainer(task, train, config, tmp_path, global_batch=8, val_data=val)
    fixed = next(iter(train))
    before = V.am_softmax_loss(fixed[1], trainer.model(fixed[0])["cosines"]).numpy().mean()
    history = trainer.fit(verbose=False)
    assert {"triplet", "am_softmax", "active_triplets", "held_out/auc", "score"} <= set(history[-1])
    after = V.am_softmax_loss(fixed[1], trainer.model(fixed[0])["cosines"]).numpy().mean()
    assert after < 0.7 * before and history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["held_out/auc"] > 0.8


def test_person_split_is_stable_and_by_person():
    names = [f"person{i}" for i in range(500)]
    val = V.person_split(names, 10)
    assert val == V.person_split(list(reversed(names)), 10) and 20 < len(val) < 80


def test_training_people_exclude_every_evaluation_person(tmp_path, celeba_layout):
    from facezoo.data.identities import celeba_identities, lfw_evaluation_people, lfw_training_people
    root, names = lfw_layout(tmp_path / "lfw", people=10, images=3, folds=((0, 1), (2, 3), (4, 5)))
    evaluated = lfw_evaluation_people(str(root), [1, 2])
    assert evaluated == set(names[:4])
    people = {who for _, who in lfw_training_people(str(root), [1, 2])}
    assert people == {f"lfw:{n}" for n in names[4:]}
    croot, _, _ = celeba_layout(n=6)  # identities 100, 100, 101, 101, 102, 102
    recs = celeba_identities(str(croot))
    assert sorted({who for _, who in recs}) == ["celeba:100", "celeba:101", "celeba:102"] and len(recs) == 6
    (croot / "identity_CelebA.txt").write_text("000001.jpg\n")
    from facezoo.errors import DataFormatError
    with pytest.raises(DataFormatError, match="identity_CelebA.txt:1"):
        celeba_identities(str(croot))
