"""The screen plan: pure planning from a space and a model, the generated plain form, settings parsed once."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lisearch.config import load_settings
from lisearch.errors import ConfigError, InputError
from lisearch.models.linear import ElementalLinearModel
from lisearch.plain import from_plain, to_plain
from lisearch.screening.kernels import NetworkScorer, ScreenInputs, screen_sets
from lisearch.screening.plan import ScreenPlan, plan_screen, plan_to_dict
from lisearch.screening.space import Block, CompositionSpace
from lisearch.screening.task import inputs_from_dict, space_from_dict


def _model() -> ElementalLinearModel:
    from lisearch.chemistry.composition import parse_formulas

    fractions, _, _ = parse_formulas(["Li3PS4", "Li2S", "Li3N", "LiCl", "LiF", "Li3PO4"])
    return ElementalLinearModel(class_weight="balanced").fit(fractions, np.array([1, 1, 1, 0, 0, 0]))


def _equal(a: object, b: object) -> None:
    """Field by field, arrays with their dtype."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b)  # type: ignore[arg-type]
        for x, y in zip(a, b, strict=True):  # type: ignore[call-overload]
            _equal(x, y)
    elif hasattr(a, "__dataclass_fields__"):
        assert type(a) is type(b)
        for name in a.__dataclass_fields__:
            _equal(getattr(a, name), getattr(b, name))
    else:
        assert a == b or (a != a and b != b), (a, b)  # NaN equals NaN here


def test_plan_screen_is_pure_and_aligns_the_weights_with_the_space():
    space = CompositionSpace(("S", "O", "P"), 5, (2, 3))
    model = _model()
    inputs = plan_screen(space, model, oxidation_list="pymatgen_common", max_cost_per_kg=60.0)
    bias, weights = model.element_weights()
    from lisearch.chemistry.elements import symbols

    index = {s: i for i, s in enumerate(symbols())}
    assert inputs.bias == bias and inputs.li_weight == weights[index["Li"]]
    np.testing.assert_array_equal(inputs.weights, weights[[index[e] for e in ("O", "P", "S")]])  # sorted by Z
    assert inputs.max_cost_per_kg == 60.0 and inputs.units == 20
    with pytest.raises(InputError, match="Unknown oxidation-state list 'oxides'"):
        plan_screen(space, model, oxidation_list="oxides")


def test_plain_form_round_trips_through_json_with_dtypes():
    space = CompositionSpace(("O", "S", "Ti"), 10, (2, 3))
    rng = np.random.default_rng(0)
    net = NetworkScorer(
        rng.normal(size=4), rng.normal(size=(3, 4)), ((rng.normal(size=(8, 5)), rng.normal(size=5)),), ("mean", "std")
    )
    inputs = plan_screen(space, _model())
    for candidate in (inputs, ScreenInputs(**{**inputs.__dict__, "network": net, "emit": False})):
        plan = ScreenPlan(space, candidate, tuple(space.blocks(2)), "m.json", "ab", "pymatgen_icsd", "r1")
        data = json.loads(json.dumps(plan_to_dict(plan)))  # what a broadcast may carry: plain JSON
        _equal(inputs_from_dict(data), candidate)
        assert space_from_dict(data) == space and space_from_dict(data).atomic_numbers.dtype == np.int16
        # the rebuilt inputs screen exactly as the originals
        sets = space.element_sets(Block(3, 0, 1))
        for a, b in zip(screen_sets(candidate, sets), screen_sets(inputs_from_dict(data), sets), strict=True):
            assert a.equals(b)


def test_plain_refuses_unsupported_fields():
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Odd:
        value: dict[str, int]

    with pytest.raises(TypeError, match="do not support"):
        from_plain(Odd, to_plain(Odd({"a": 1})))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("screen.elements=O,Qq", r"screen\.elements names unknown element\(s\) Qq"),
        ("screen.exclude=Xx", r"screen\.exclude names unknown element\(s\) Xx"),
        ("screen.sizes=2,three", r"screen\.sizes is '2,three'"),
        ("screen.oxidation_list=oxides", r"screen\.oxidation_list is 'oxides'; use one of pymatgen_common"),
        ("run.id=bad id!", r"run\.id is 'bad id!': a run id is 1 to 64 letters"),
    ],
)
def test_screen_settings_are_parsed_when_loaded(override: str, message: str):
    with pytest.raises(ConfigError, match=message):
        load_settings(None, [override])


def test_screen_settings_expose_parsed_values():
    s = load_settings(None, ["screen.elements=O,S,Ti,P", "screen.exclude=P", "screen.sizes=3"]).screen
    assert s.partners == ("O", "S", "Ti") and s.size_tuple == (3,)
    assert len(load_settings(None, ["screen.exclude=O"]).screen.partners) == 92


def test_blocks_grouped_by_state_lists_screen_like_lexicographic_blocks():
    """The grouped blocks of a plan (what plan_from_settings builds), through the plain form, give every set the
    counts and survivors that lexicographic blocks give it."""
    from dataclasses import replace

    from lisearch.screening.kernels import state_ranks
    from lisearch.screening.task import run_blocks

    space = CompositionSpace(("O", "S", "P", "F", "Cl", "Na", "K", "Mg", "Ca"), 10, (2, 3, 4))
    inputs = plan_screen(space, _model(), oxidation_list="pymatgen_icsd", max_cost_per_kg=1e9)
    grouped = replace(space, classes=tuple(int(r) for r in state_ranks(inputs.states)[1]))
    assert len(set(grouped.classes)) < len(grouped.classes)  # some elements share a list: groups span sets
    frames = []
    for sp in (grouped, space):
        plan = ScreenPlan(sp, inputs, tuple(sp.blocks(7)), "m.json", "ab", "pymatgen_icsd", "r1")
        data = json.loads(json.dumps(plan_to_dict(plan)))
        assert space_from_dict(data) == sp
        stats, survivors = run_blocks(data, list(range(len(plan.blocks))))
        keys = ["z1", "z2", "z3", "z4"]
        frames.append(
            (
                stats.sort_values(keys).reset_index(drop=True),
                survivors.sort_values([*keys, "pct_li", "pct_1", "pct_2", "pct_3", "pct_4"]).reset_index(drop=True),
            )
        )
    (stats_g, surv_g), (stats_l, surv_l) = frames
    assert len(stats_g) == sum(space.n_sets(k) for k in space.sizes) and len(surv_g) > 0
    assert stats_g.equals(stats_l) and surv_g.equals(surv_l)


def test_the_run_time_is_extrapolated_from_sampled_blocks(monkeypatch: pytest.MonkeyPatch):
    """bench's extrapolation: the mean block time x blocks / cores, inside its 95 % interval. The kernel is replaced
    by one that advances a fake clock by a known time per block (10 s x (1 + the sum of the set's positions))."""
    import lisearch.screening.kernels as kernels
    import tools.bench as bench

    clock = [0.0]
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(
        kernels, "screen_sets", lambda inputs, sets: clock.__setitem__(0, clock[0] + 10 * (1 + sets[0].sum()))
    )
    space = CompositionSpace(("O", "S", "P", "N", "Cl"), 10, (4,))
    inputs = plan_screen(space, _model())
    plan = ScreenPlan(space, inputs, tuple(space.blocks(1)), "m.json", "ab", "pymatgen_icsd", "r1")
    out = bench._blocks_extrapolation(plan, 3, cores=2)
    ids = np.random.default_rng(0).choice(5, 3, replace=False)
    want = np.mean([10 * (1 + space.element_sets(plan.blocks[b])[0].sum()) for b in ids])
    assert out["blocks"] == 5 and out["sampled_blocks"] == 3 and out["sets_per_block"] == 1
    low, high = out["extrapolated_seconds_95"]
    mean = out["block_seconds_min_mean_max"][1]
    assert mean == pytest.approx(want) and low < high
    assert low <= out["extrapolated_seconds"] <= high and out["extrapolated_seconds"] == round(mean * 5 / 2)
