"""Inference: planning, predictions recomputed by hand in numpy, fusion variants, adaptation, chunking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kraken_cli.engine.connectome import ArraySource, Cohort, align_sources
from kraken_cli.engine.errors import DeviceError, FlavorError, TransformError
from kraken_cli.engine.flavors import resolve_flavor
from kraken_cli.engine.inference import KrakenModel, PredictOptions, load_model, resolve_device

from ..helpers import FC, SC, TinyModel, make_tiny_model, random_connectomes, tri

N = 5


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def model(tiny: TinyModel) -> KrakenModel:
    return load_model(tiny.checkpoint, [tiny.transforms_file], device="cpu")


def _cohort(flavors=(FC, SC), n: int = N, seed: int = 50) -> Cohort:  # type: ignore[no-untyped-def]
    ids = [f"s{i}" for i in range(n)]
    return align_sources([ArraySource(resolve_flavor(f), tri(random_connectomes(n, 86, seed=seed + k)),
                                      file=f"{f}.mat", subjects=ids) for k, f in enumerate(flavors)])


# -- an independent numpy implementation of the forward path ------------------------------------------

def _params(tiny: TinyModel, flavor: str) -> dict[str, np.ndarray]:
    p = tiny.transforms[flavor].params()
    return {k: np.asarray(v, dtype=np.float64) for k, v in p.items() if k not in ("type",)}


def _sd(tiny: TinyModel) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().astype(np.float64) for k, v in tiny.model.state_dict().items()}


def hand_encode(tiny: TinyModel, flavor: str, x: np.ndarray) -> np.ndarray:
    p, sd, i = _params(tiny, flavor), _sd(tiny), tiny.flavors.index(flavor)
    xt = 100 * ((x - p["pca_input_mean"]) @ p["pca_components"].T) / p["input_normscale"][0]
    z = xt @ sd[f"encoder_list.{i}.0.weight"].T + sd[f"encoder_list.{i}.0.bias"]
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def hand_decode(tiny: TinyModel, flavor: str, z: np.ndarray) -> np.ndarray:
    p, sd, j = _params(tiny, flavor), _sd(tiny), tiny.flavors.index(flavor)
    y = z @ sd[f"decoder_list.{j}.0.weight"].T + sd[f"decoder_list.{j}.0.bias"]
    return (y / 100 * p["input_normscale"][0]) @ p["pca_components"] + p["pca_input_mean"]


def _close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(np.abs(b).max()))


# -- tests ---------------------------------------------------------------------------------------------

def test_paths_match_hand_computation(tiny: TinyModel, model: KrakenModel) -> None:
    cohort = _cohort()
    pred = model.predict(cohort, outputs=["all", "encoded"])
    assert set(pred) == {FC, SC}
    for src in (FC, SC):
        x = cohort.read(src)
        z = hand_encode(tiny, src, x)
        _close(pred[src]["encoded"], z)
        for dst in (FC, SC):
            out = pred[src][dst]
            assert out.dtype == np.float32 and out.shape == (N, 3655)
            _close(out, hand_decode(tiny, dst, z))


def test_fusion_and_variants_match_hand_means(tiny: TinyModel, model: KrakenModel) -> None:
    cohort = _cohort()
    z = {f: hand_encode(tiny, f, cohort.read(f)) for f in (FC, SC)}
    opts = PredictOptions(outputs=("all", "encoded"), fusion=True, fusion_noself=True, chunk_size=2)
    plan = model.plan(cohort, opts)
    assert plan.sources == [FC, SC, "fusion", "fusion.noself"]
    parts: dict = {}
    for _, chunk in model.iter_predictions(cohort, plan, opts):
        for k, v in chunk.items():
            parts.setdefault(k, []).append(v)
    got = {k: np.concatenate(v) for k, v in parts.items()}
    mean = (z[FC] + z[SC]) / 2
    _close(got[("fusion", "encoded")], mean)                      # plain mean, not renormalised
    assert np.all(np.linalg.norm(got[("fusion", "encoded")], axis=1) < 1)
    _close(got[("fusion", FC)], hand_decode(tiny, FC, mean))
    # noself: predicting FC uses SC only, and vice versa; its saved encoded is the plain mean
    _close(got[("fusion.noself", FC)], hand_decode(tiny, FC, z[SC]))
    _close(got[("fusion.noself", SC)], hand_decode(tiny, SC, z[FC]))
    _close(got[("fusion.noself", "encoded")], mean)


def test_fusion_norm(tiny: TinyModel, model: KrakenModel) -> None:
    cohort = _cohort()
    opts = PredictOptions(outputs=("encoded",), fusion=True, fusion_norm=True, only_fusion=True)
    plan = model.plan(cohort, opts)
    assert plan.sources == ["fusion"]
    (_, chunk), = list(model.iter_predictions(cohort, plan, opts))
    z = {f: hand_encode(tiny, f, cohort.read(f)) for f in (FC, SC)}
    mean = (z[FC] + z[SC]) / 2
    _close(chunk[("fusion", "encoded")], mean / np.linalg.norm(mean, axis=1, keepdims=True))


@pytest.mark.parametrize("fusion_kw", [dict(fusion_noself=True), dict(fusion_noatlas=True)])
def test_exclusion_with_nothing_left_is_refused_before_compute(model: KrakenModel, fusion_kw: dict) -> None:
    cohort = _cohort(flavors=(FC,))
    with pytest.raises(FlavorError, match="no flavor left"):
        model.plan(cohort, PredictOptions(fusion=True, **fusion_kw))


def test_chunk_size_does_not_change_results(model: KrakenModel) -> None:
    cohort = _cohort(n=7)
    res = {}
    for cs in (1, 3, 1000):
        opts = PredictOptions(outputs=("all", "encoded"), fusion=True, fusion_noself=True, chunk_size=cs)
        plan = model.plan(cohort, opts)
        starts, parts = [], {}
        for start, chunk in model.iter_predictions(cohort, plan, opts):
            starts.append(start)
            for k, v in chunk.items():
                parts.setdefault(k, []).append(v)
        assert starts == list(range(0, 7, cs))
        res[cs] = {k: np.concatenate(v) for k, v in parts.items()}
    for cs in (3, 1000):
        assert res[cs].keys() == res[1].keys()
        for k in res[1]:
            np.testing.assert_allclose(res[cs][k], res[1][k], rtol=1e-6, atol=1e-6)


def test_progress_is_reported(model: KrakenModel) -> None:
    calls: list = []

    class Rec:
        def start(self, label: str, total: int | None = None) -> None:
            calls.append(("start", total))

        def advance(self, n: int = 1) -> None:
            calls.append(("advance", n))

        def done(self) -> None:
            calls.append(("done",))

    cohort = _cohort(n=5)
    opts = PredictOptions(chunk_size=2)
    list(model.iter_predictions(cohort, model.plan(cohort, opts), opts, Rec()))
    assert calls == [("start", 5), ("advance", 2), ("advance", 2), ("advance", 1), ("done",)]


def test_adaptation_shifts_inputs(tiny: TinyModel, model: KrakenModel) -> None:
    cohort = _cohort(flavors=(FC,))
    x = cohort.read(FC)
    pred = model.predict(cohort, outputs=["encoded"], adapt="meanshift")
    mu_tr = tiny.train[FC].mean(axis=0)
    _close(pred[FC]["encoded"], hand_encode(tiny, FC, x - x.mean(axis=0) + mu_tr))


def test_latent_input_is_decoded_as_given(tiny: TinyModel, model: KrakenModel) -> None:
    z = np.random.default_rng(0).normal(size=(3, tiny.latent)) * 0.3
    cohort = align_sources([ArraySource(resolve_flavor("encoded"), z, file="z.mat")])
    pred = model.predict(cohort, outputs=[SC])
    _close(pred["encoded"][SC], hand_decode(tiny, SC, z))
    bad = align_sources([ArraySource(resolve_flavor("encoded"), np.zeros((3, tiny.latent + 1)), file="z.mat")])
    with pytest.raises(FlavorError, match="latent"):
        model.predict(bad, outputs=[SC])


def test_plan_errors(model: KrakenModel) -> None:
    other = align_sources([ArraySource(resolve_flavor("FCpcorr_fs86_hpf"), np.zeros((2, 3655)), file="p.mat")])
    with pytest.raises(FlavorError, match="FCpcorr_fs86_hpf is not in the checkpoint") as ei:
        model.plan(other, PredictOptions())
    assert ei.value.hint
    with pytest.raises(FlavorError, match="not a flavor of the checkpoint"):
        model.plan(_cohort(), PredictOptions(outputs=("SCsdstream_fs86_volnorm",)))
    z = align_sources([ArraySource(resolve_flavor("encoded"), np.zeros((2, 4)), file="z.mat")])
    with pytest.raises(FlavorError, match="connectome inputs"):
        model.plan(z, PredictOptions(fusion=True))
    with pytest.raises(FlavorError, match="fusionFC selects no input"):
        model.plan(_cohort(flavors=(SC,)), PredictOptions(fusion=True, fusion_include={"fusionFC": ["FC"]}))


def test_plan_matches_inputs_by_canonical_name(model: KrakenModel) -> None:
    cohort = align_sources([ArraySource(resolve_flavor("fs86_hpf_FCcov"), np.zeros((2, 3655)), file="x.mat")])
    plan = model.plan(cohort, PredictOptions(outputs=("all",)))
    assert plan.model_index == {FC: 0}
    assert plan.outputs == [FC, SC]


def test_load_model_finds_transforms_by_naming_rule(tiny: TinyModel) -> None:
    m = load_model(tiny.checkpoint, device="cpu")  # tiny_chkpt_..._ep000010.pt -> tiny_ioxfm_....npy
    assert set(m.transforms) == {FC, SC}


def test_load_model_without_transforms(tmp_path: Path) -> None:
    t = make_tiny_model(tmp_path, name="solo")
    t.transforms_file.unlink()
    with pytest.raises(TransformError, match="no transform file") as ei:
        load_model(t.checkpoint, device="cpu")
    assert "-t" in (ei.value.hint or "")


def test_load_model_with_unrelated_transforms(tmp_path: Path, tiny: TinyModel) -> None:
    other = make_tiny_model(tmp_path, flavors=("FCpcorr_fs86_hpf",), name="other")
    with pytest.raises(TransformError, match="cover none"):
        load_model(tiny.checkpoint, [other.transforms_file], device="cpu")


def test_missing_transform_for_one_flavor(tmp_path: Path, tiny: TinyModel) -> None:
    from kraken_cli.engine.transforms.files import save_transforms

    f = save_transforms(tmp_path / "fc_only.npy", {FC: tiny.transforms[FC]})
    m = load_model(tiny.checkpoint, [f], device="cpu")
    with pytest.raises(TransformError, match=f"no input transform for flavor {SC}"):
        m.plan(_cohort(), PredictOptions())


def test_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(DeviceError) as ei:
            resolve_device("cuda")
        assert "--device cpu" in (ei.value.hint or "")
