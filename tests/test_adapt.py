import numpy as np
import pytest
import torch

from napari_oaims import Engine
from napari_oaims.adapt import ADAPTERS, make_adapter
from napari_oaims.adapt.guard import Check, GuardedOptimizer
from napari_oaims.adapt.settings import RETIRED, UNLOGGED
from napari_oaims.simulate.robot import correction_clicks

from conftest import largest_ids, object_centre


def annotate(session, labels, lid, clicks=3):
    target = labels == lid
    mask = session.click(object_centre(labels, lid)).mask
    for _ in range(clicks - 1):
        cs = correction_clicks(mask, target, 1, mode="center")
        if not cs:
            break
        mask = session.click((cs[0].y, cs[0].x), positive=cs[0].positive).mask
    return session.accept().mask


@pytest.mark.parametrize("name", sorted(set(ADAPTERS) - {"none"}))
def test_every_adapter_updates_and_logs(nuclei_crop, name):
    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation=name)
    base = engine.weights_hash
    s = engine.session(image)
    annotate(s, labels, largest_ids(labels, 1)[0])
    updates = [e for e in s.events if e["kind"] == "update"]
    assert updates and engine.updates > 0
    if name == "mi":  # the session's first object keeps no MI steps (mi_check_first)
        assert updates[-1]["extra"]["method"] == "mi_rewind" and engine.weights_hash == base
        assert any(u["extra"]["method"] == "mi" and not u["extra"]["rolled_back"] for u in updates)
    else:
        assert engine.weights_hash != base
    for u in updates:
        x = u["extra"]
        assert {"method", "loss", "weights_before", "weights_after", "rolled_back", "adaptation"} <= set(x)
        assert u["latency_ms"] > 0 and x["adaptation"] == name
    engine.reset()
    assert engine.weights_hash == base and engine.updates == 0


def test_mi_and_pi_steps_follow_algorithm_1(nuclei_crop):
    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation="oaims")
    s = engine.session(image)
    annotate(s, labels, largest_ids(labels, 1)[0], clicks=3)
    methods = [e["extra"]["method"] for e in s.events if e["kind"] == "update"]
    n_clicks = sum(e["kind"] == "click" for e in s.events)
    assert methods.count("mi") == n_clicks - 1  # no MI on the localisation click
    assert methods[-2:] == ["pi_stage1", "pi_stage2"]


def test_sessions_of_one_engine_share_weights(nuclei_crop):
    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation="pi")
    ids = largest_ids(labels, 2)
    annotate(engine.session(image), labels, ids[0])
    h = engine.weights_hash
    s2 = engine.session(image)
    s2.click(object_centre(labels, ids[1]))
    assert s2.events[-1]["weights"] == h != engine.base_hash


def test_switching_mode_mid_object(nuclei_crop):
    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation="none")
    s = engine.session(image)
    lid = largest_ids(labels, 1)[0]
    s.click(object_centre(labels, lid))
    engine.adaptation = "oaims"  # applies from the next prompt; PI runs at accept with the new mode
    target = labels == lid
    cs = correction_clicks(s.mask, target, 1, mode="center") or []
    for c in cs:
        s.click((c.y, c.x), positive=c.positive)
    s.accept()
    assert s.events[1]["extra"]["adaptation"] == "none"
    assert any(e["kind"] == "update" and e["extra"]["method"] == "pi_stage2" for e in s.events)
    with pytest.raises(ValueError, match="unknown adaptation"):
        engine.adaptation = "magic"
    assert engine.adaptation == "oaims"


def test_contradicting_click_same_pixel(nuclei_crop):
    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation="oaims")
    s = engine.session(image)
    y, x = object_centre(labels, largest_ids(labels, 1)[0])
    s.click((y, x))
    mask = s.click((y, x), positive=False).mask  # the later click wins at that pixel
    assert not mask[y, x]
    assert all(np.isfinite(p.detach()).all() for p in engine.model.parameters())


def test_accept_without_prompts_never_touches_weights(nuclei_crop):
    engine = Engine.pretrained(device="cpu", adaptation="oaims")
    h = engine.weights_hash
    s = engine.session(nuclei_crop[0])
    with pytest.raises(ValueError):
        s.accept()
    assert engine.weights_hash == h and engine.updates == 0


def test_guard_refuses_nan_loss_and_spikes_and_rolls_back_collapse(engine):
    opt = GuardedOptimizer(lr=1e-3)
    h = engine.weights_hash
    x = np.zeros((1, 4, 64, 64), np.float32)
    rec = opt.step(engine, "t", lambda m: m(torch.from_numpy(x)).sum() * float("nan"))
    assert rec["rolled_back"] and "non-finite" in rec["reason"] and engine.weights_hash == h
    assert opt.last_rollback.check is Check.NON_FINITE_LOSS and not opt.last_rollback.undone
    for _ in range(5):
        opt.step(engine, "s", lambda m: (m(torch.from_numpy(x)) * 0).sum() + 0.1)
    h2 = engine.weights_hash
    rec = opt.step(engine, "s", lambda m: (m(torch.from_numpy(x)) * 0).sum() + 100.0)
    assert rec["rolled_back"] and "spike" in rec["reason"] and engine.weights_hash == h2
    assert opt.last_rollback.check is Check.LOSS_SPIKE and engine.last_rollback == f"s: {rec['reason']}"
    # A huge step that drives every logit negative: the prediction collapses -> rolled back.
    big = GuardedOptimizer(lr=10.0)
    target = np.zeros((1, 64, 64), bool)
    target[0, 20:40, 20:40] = True
    rec = big.step(engine, "c", lambda m: m(torch.from_numpy(x)).mean() * 1e3, check_x=x, check_target=target)
    assert rec["rolled_back"] and "collapsed" in rec["reason"] and engine.weights_hash == h2
    assert big.last_rollback.check is Check.COLLAPSE and big.last_rollback.undone


def test_save_load_adapted(tmp_path, nuclei_crop):
    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation="pi")
    annotate(engine.session(image), labels, largest_ids(labels, 1)[0])
    engine.save(tmp_path / "adapted")
    loaded = Engine.load(tmp_path / "adapted.safetensors", device="cpu")
    assert loaded.weights_hash == engine.weights_hash
    assert loaded.updates == engine.updates and loaded.adaptation == "pi"
    assert loaded.adapter.settings() == engine.adapter.settings()


def test_saved_adapter_settings_survive_a_change_of_defaults(tmp_path):
    """Engine.load rebuilds the adapter from its saved settings, not from its name."""
    from napari_oaims.adapt import adapter_from_settings
    from napari_oaims.adapt.oaims import OAIMSAdapter

    engine = Engine.pretrained(device="cpu", adaptation=OAIMSAdapter(replay_size=0, pi_ignore=0.25, seed=5))
    engine.save(tmp_path / "a")
    loaded = Engine.load(tmp_path / "a.safetensors", device="cpu")
    assert loaded.adaptation == "oaims" and loaded.adapter.settings() == engine.adapter.settings()
    assert loaded.adapter.config.replay_size == 0 and loaded.adapter.config.seed == 5
    for name in sorted(ADAPTERS) + ["oaims:replay_size=4:lr=3e-4", "tsca:ema=0.5"]:
        settings = make_adapter(name).settings()
        assert adapter_from_settings(settings).settings() == settings
    with pytest.raises(ValueError, match="replay_size"):
        make_adapter("oaims:replay_size=-1")
    for bad in ({"lr": 1e-4}, {"name": "nope"}, "oaims"):
        with pytest.raises(ValueError, match="adapter settings|unknown adaptation"):
            adapter_from_settings(bad)
    assert loaded.base_hash == Engine.pretrained(device="cpu").weights_hash
    loaded.reset()
    assert loaded.weights_hash == loaded.base_hash


def test_load_adapted_for_other_architecture(tmp_path):
    from napari_oaims.model import ClickUNet, save_weights

    save_weights(ClickUNet(channels=(8, 16)), tmp_path / "w", {"adapted_from": {"weights_hash": "x", "updates": 3}})
    e = Engine.load(tmp_path / "w", device="cpu")  # a consistent small model loads; its base is itself
    assert e.updates == 3
    (tmp_path / "w.json").write_text((tmp_path / "w.json").read_text().replace("[\n    8,\n    16\n  ]", "[4, 8]"))
    with pytest.raises(ValueError, match="do not fit"):
        Engine.load(tmp_path / "w", device="cpu")


@pytest.mark.parametrize("name", ["oaims", "tsca"])
def test_engine_to_keeps_what_was_learnt(nuclei_crop, name):
    image, labels = nuclei_crop
    ids = largest_ids(labels, 2)
    engine = Engine.pretrained(device="cpu", adaptation=name)
    base = engine.weights_hash
    annotate(engine.session(image), labels, ids[0])
    learnt, updates = engine.weights_hash, engine.updates
    assert engine.to("cpu") is engine and engine.weights_hash == learnt and engine.updates == updates
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            engine.to("cuda")
        assert engine.device.type == "cpu" and engine.weights_hash == learnt
    else:  # on a GPU machine: move there, keep learning, come back
        engine.to("cuda")
        assert next(engine.model.parameters()).is_cuda and engine.weights_hash == learnt
        annotate(engine.session(image), labels, ids[1])
        engine.to("cpu")
        assert not next(engine.model.parameters()).is_cuda
    annotate(engine.session(image), labels, ids[1])  # the optimiser state still fits the model
    assert engine.updates > updates
    engine.reset()
    assert engine.weights_hash == base


def test_adapter_spec_with_settings():
    from napari_oaims.adapt import make_adapter, parse_spec

    assert parse_spec("OAIMS:mi_lr=3e-5:replay_size=16") == ("oaims", {"mi_lr": 3e-5, "replay_size": 16})
    a = make_adapter("oaims:mi_lr=3e-5")
    assert (
        a.name == "oaims:mi_lr=3e-5"
        and a.config.mi_lr == 3e-5
        and a.optimizer.lr == 1e-4
        and a.config.mi
        and a.config.pi
    )
    assert make_adapter("pi").name == "pi" and make_adapter("oaims").config.mi_lr == 1e-4
    assert make_adapter("oaims").mi_optimizer is not make_adapter("oaims").optimizer  # MI keeps its own moments
    assert parse_spec("oaims:mi_gate=false:max_clicks=3") == ("oaims", {"mi_gate": False, "max_clicks": 3})
    for bad, match in (
        ("oaims:mi_lr", "key=value"),
        ("oaims:mi_lr=fast", "real number"),
        ("oaims:max_clicks=2.5", "whole number"),
        ("oaims:mi_gate=maybe", "true/false"),
        ("oaims:wings=2", "unknown setting 'wings'.*mi_lr"),
        ("nope:lr=1", "unknown adaptation"),
        ("oaims:mi=0", "unknown setting 'mi'"),
        ("none:lr=1", "no settings"),
    ):
        with pytest.raises(ValueError, match=match):
            make_adapter(bad)


@pytest.mark.parametrize(
    "retired",
    [
        "anchor=0.2",
        "mi_own_optimizer=0",
        "pi_stage1=0",
        "pi_stage2=0",
        "pi_refresh=1",
        "pi_click_window=1",
        "pi_stage1_steps=2",
        "early_objects=2",
        "early_steps=3",
        "first_lr_scale=3",
        "norm_lr_scale=3",
        "pi_views=3",
        "pi_sample_k=1",
    ],
)
def test_retired_settings_are_refused_with_a_clear_message(retired):
    from napari_oaims.adapt import OAIMSSettings, make_adapter, parse_spec

    key = retired.split("=")[0]
    # On the command line a retired key is refused even at its shipped value: nobody should set it.
    for spec in (f"oaims:{retired}", f"pi:{key}={RETIRED[key]}", f"oaims:mi_lr=3e-5:{retired}"):
        with pytest.raises(
            ValueError,
            match=rf"'{key}' was retired in version 0.2.0 \(format version 2\); "
            r"'(oaims|pi)' takes lr, mi_lr, beta, .*pi_ignore$",
        ):
            parse_spec(spec)
        with pytest.raises(ValueError, match="retired in version 0.2.0"):
            make_adapter(spec)
    with pytest.raises(ValueError, match=rf"\['{key}'\] for adaptation 'oaims' \({key}: retired in version 0.2.0"):
        make_adapter("oaims", **{key: RETIRED[key]})
    with pytest.raises(ValueError, match="unknown setting"):
        make_adapter("tsca", **{key: RETIRED[key]})  # not a setting of the baselines either
    with pytest.raises(TypeError):
        OAIMSSettings(**{key: RETIRED[key]})
    assert key not in make_adapter("oaims").settings()


def test_guarded_optimizer_has_one_learning_rate_and_no_anchor():
    """Adam over all parameters at one rate; the retired pull towards the pretrained weights
    (``anchor``) and per-layer rates (``lr_scales``) are gone."""
    import inspect

    assert list(inspect.signature(GuardedOptimizer).parameters) == ["lr", "spike_factor", "history"]
    for retired in ({"anchor": 0.1}, {"lr_scales": {"first": 2.0}}):
        with pytest.raises(TypeError):
            GuardedOptimizer(1e-4, **retired)


#: The adapter settings that version 0.1.0 logged for ``"oaims"`` (its defaults, retired keys included).
OLD_OAIMS_SETTINGS = {
    "name": "oaims", "optimizer": "Adam", "lr": 0.0001, "mi_lr": 0.0001, "mi_own_optimizer": True, "anchor": 0.0,
    "pi_stage1": True, "pi_stage2": True, "pi_refresh": False, "pi_click_window": False, "pi_stage1_steps": 1,
    "mi_gate": True, "mi_stop": True, "mi_rewind": True, "mi_max_prompts": 10, "early_objects": 0, "early_steps": 1,
    "first_lr_scale": 1.0, "norm_lr_scale": 1.0, "pi_views": 1, "pi_ignore": 0.5, "pi_sample_k": False,
    "beta": 200.0, "max_clicks": 10, "replay_size": 16, "replay_k": 2, "seed": 0,
}  # fmt: skip


def test_logged_settings_with_retired_keys_restore_at_the_shipped_value_only():
    """A log written before the settings were retired names them all at their shipped values:
    it restores to today's adapter, with the rules added since left out (``UNLOGGED``); a run that
    used another value is refused, naming the key."""
    from napari_oaims.adapt import adapter_from_settings

    today = make_adapter("oaims").settings()
    assert adapter_from_settings(OLD_OAIMS_SETTINGS).settings() == {**today, **UNLOGGED}
    pi = make_adapter("pi").settings()
    assert adapter_from_settings({**OLD_OAIMS_SETTINGS, "name": "pi"}).settings() == {**pi, **UNLOGGED}
    assert adapter_from_settings({**today, **RETIRED}).settings() == today
    kept = adapter_from_settings({**OLD_OAIMS_SETTINGS, "mi_lr": 3e-5, "replay_size": 0})
    assert kept.config.mi_lr == 3e-5 and kept.config.replay_size == 0
    assert set(RETIRED) == set(OLD_OAIMS_SETTINGS) - set(today)  # every retired key, and nothing else


@pytest.mark.parametrize("key", sorted(RETIRED))
def test_logged_retired_setting_at_another_value_is_refused(key):
    from napari_oaims.adapt import adapter_from_settings

    other = {bool: lambda v: not v, int: lambda v: v + 2, float: lambda v: v + 0.5}[type(RETIRED[key])](RETIRED[key])
    with pytest.raises(
        ValueError,
        match=rf"{key}={other!r}.*retired in format version 2 \(package 0.2.0\)"
        r".*cannot be replayed exactly",
    ):
        adapter_from_settings({**OLD_OAIMS_SETTINGS, key: other})


def test_old_weights_file_with_retired_settings(tmp_path):
    """Adapted weights saved by version 0.1.0 name the retired settings: they load at the shipped
    values (the adapter is today's, less the rules added since), and are refused with the
    setting's name otherwise."""
    import json

    engine = Engine.pretrained(device="cpu", adaptation="oaims")
    engine.save(tmp_path / "a")
    meta = tmp_path / "a.json"
    config = json.loads(meta.read_text())
    config["adapted_from"]["adaptation"] = OLD_OAIMS_SETTINGS
    meta.write_text(json.dumps(config))
    loaded = Engine.load(tmp_path / "a.safetensors", device="cpu")
    assert loaded.adaptation == "oaims" and loaded.adapter.settings() == {**engine.adapter.settings(), **UNLOGGED}
    config["adapted_from"]["adaptation"] = {**OLD_OAIMS_SETTINGS, "anchor": 0.2}
    meta.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="anchor=0.2.*cannot be replayed exactly"):
        Engine.load(tmp_path / "a.safetensors", device="cpu")
    assert Engine.load(tmp_path / "a.safetensors", device="cpu", adaptation="none").adaptation == "none"


def test_settings_dataclasses_are_the_api():
    """``make_adapter(name, settings, **overrides)``: typed, frozen, validated settings whose
    JSON form (``Adapter.settings()``) rebuilds the same adapter."""
    import dataclasses
    import json

    from napari_oaims.adapt import BaselineSettings, OAIMSSettings, TSCASettings, adapter_from_settings, parse_spec

    a = make_adapter("oaims", OAIMSSettings(mi_lr=3e-5, replay_size=4))
    assert a.settings() == make_adapter("oaims", mi_lr=3e-5, replay_size=4).settings()
    assert a.name == "oaims" and a.config.mi_lr == 3e-5 and a.config.replay_size == 4 and a.config.lr == 1e-4
    assert make_adapter("oaims", OAIMSSettings(mi_lr=3e-5), mi_lr=1e-5).config.mi_lr == 1e-5  # keywords win
    mi = make_adapter("mi", OAIMSSettings(seed=3))  # the name fixes mi and pi
    assert (mi.name, mi.config.mi, mi.config.pi, mi.config.seed) == ("mi", True, False, 3)
    assert make_adapter("tsca", TSCASettings(ema=0.5)).ema == 0.5
    assert make_adapter("ia_sa", BaselineSettings(lr=2e-4)).settings() == {
        "name": "ia_sa",
        "optimizer": "Adam",
        "lr": 2e-4,
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        OAIMSSettings().lr = 1.0  # type: ignore[misc]
    for bad, cls in (("tsca", OAIMSSettings), ("ia_sa", TSCASettings), ("oaims", BaselineSettings)):
        with pytest.raises(TypeError, match=f"takes {ADAPTERS[bad][1].__name__}"):
            make_adapter(bad, cls())
    with pytest.raises(ValueError, match="given Adapter instance"):
        make_adapter(make_adapter("oaims"), mi_lr=1e-5)
    for kwargs, match in (
        ({"replay_k": -1}, "replay_k must be a whole number >= 0"),
        ({"max_clicks": 2.5}, "max_clicks must be a whole number"),
        ({"lr": float("nan")}, "lr must be a finite number"),
        ({"mi_gate": 1}, "mi_gate must be True or False"),
        ({"mi": False, "pi": False}, "at least one of mi and pi"),
    ):
        with pytest.raises(ValueError, match=match):
            OAIMSSettings(**kwargs)
    for kwargs, match in (({"ema": 1.0}, "ema must be in"), ({"consistency": -1.0}, "consistency"), ({"lr": -1}, "lr")):
        with pytest.raises(ValueError, match=match):
            TSCASettings(**kwargs)
    # The command-line form converts with each field's type.
    assert parse_spec("oaims:lr=1:mi_rewind=1:mi_stop=FALSE:seed=7") == (
        "oaims",
        {"lr": 1.0, "mi_rewind": True, "mi_stop": False, "seed": 7},
    )
    assert type(parse_spec("tsca:ema=0")[1]["ema"]) is float and parse_spec("none") == ("none", {})
    # JSON round trip for every adapter, through a file as the logs and weights JSON keep it.
    for name in sorted(ADAPTERS):
        settings = json.loads(json.dumps(make_adapter(name).settings()))
        assert settings["name"] == name
        assert adapter_from_settings(settings).settings() == settings


def annotated(spec, nuclei_crop, clicks):
    """An engine with adaptation ``spec`` after one annotated object: (engine, session, base hash)."""
    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation=spec)
    base = engine.weights_hash
    s = engine.session(image)
    annotate(s, labels, largest_ids(labels, 1)[0], clicks=clicks)
    return engine, s, base


def test_mi_learning_rate_is_used_for_mi_steps_only(nuclei_crop):
    hashes = {}
    for spec in ("mi:mi_lr=1e-4", "mi:mi_lr=0", "pi:mi_lr=0"):
        engine, _, base = annotated(spec + ":mi_check_first=0", nuclei_crop, 3)
        hashes[spec] = engine.weights_hash != base
    # lr 0 leaves MI weights unchanged; PI steps keep the main learning rate
    assert hashes == {"mi:mi_lr=1e-4": True, "mi:mi_lr=0": False, "pi:mi_lr=0": True}


def weight_changes(spec, image, labels, lid, clicks):
    """(engine, {parameter name: change from the pretrained weights}) after annotating ``lid``."""
    engine = Engine.pretrained(device="cpu", adaptation=spec)
    base = {k: v.clone() for k, v in engine.base_state().items()}
    annotate(engine.session(image), labels, lid, clicks=clicks)
    return engine, {n: p.detach() - base[n] for n, p in engine.model.named_parameters()}


@pytest.mark.parametrize("gate", [True, False])
def test_mi_learns_only_from_clicks_that_correct_the_mask(nuclei_crop, gate):
    """A positive click inside the shown mask (what a wrong-label click looks like) is no
    correction: with the gate (default) MI skips it, without it MI steps as before. mi_stop
    (tested below) is off here so that the later correcting click is learnt from."""
    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation="oaims:mi_stop=0" if gate else "oaims:mi_gate=0")
    s = engine.session(image)
    lid = largest_ids(labels, 1)[0]
    mask = s.click(object_centre(labels, lid)).mask
    inside = np.argwhere(mask & (labels == lid))
    assert s.mask_values((), inside[:1]).all() and not s.mask_values((), [[-5, 3], [10**6, 0]]).any()
    h = engine.weights_hash
    s.click(tuple(inside[len(inside) // 3]), positive=True)
    mi = [e for e in s.events if e["kind"] == "update" and e["extra"]["method"] == "mi"]
    assert (len(mi) == 0) == gate and (engine.weights_hash == h) == gate
    # A negative click inside the mask corrects it: MI steps in both settings.
    s.click(tuple(inside[2 * len(inside) // 3]), positive=False)
    mi = [e for e in s.events if e["kind"] == "update" and e["extra"]["method"] == "mi"]
    assert len(mi) == (1 if gate else 2) and engine.weights_hash != h


def test_mi_max_prompts_limits_mi_steps_per_object(nuclei_crop):
    """With mi_max_prompts=2 MI learns from the second prompt only; PI still learns on accept."""
    methods = {}
    for spec in ("oaims", "oaims:mi_max_prompts=0", "oaims:mi_max_prompts=2"):
        _, s, _ = annotated(spec, nuclei_crop, 4)
        methods[spec] = [e["extra"]["method"] for e in s.events if e["kind"] == "update"]
        n_clicks = sum(e["kind"] == "click" for e in s.events)
        assert n_clicks >= 3
    assert methods["oaims"].count("mi") == methods["oaims:mi_max_prompts=0"].count("mi") == n_clicks - 1
    assert methods["oaims:mi_max_prompts=2"].count("mi") == 1
    assert methods["oaims:mi_max_prompts=2"][-2:] == ["pi_stage1", "pi_stage2"]
    with pytest.raises(ValueError, match="mi_max_prompts"):
        make_adapter("oaims", mi_max_prompts=-1)


def test_is_correction_by_prompt_kind():
    from napari_oaims.core.prompts import Prompt, is_correction

    click = Prompt("click", True, np.array([[3, 4]]))
    assert not is_correction(click, [True]) and is_correction(click, [False])
    neg = Prompt("click", False, np.array([[3, 4]]))
    assert is_correction(neg, [True]) and not is_correction(neg, [False])
    scribble = Prompt("scribble", True, np.array([[1, 1], [1, 2], [1, 3]]))
    assert is_correction(scribble, [True, False, True]) and not is_correction(scribble, [True] * 3)
    box = Prompt("box", True, np.zeros((0, 2)), box=(0, 0, 5, 5))
    assert is_correction(box, [])


def test_mi_stops_while_a_click_that_corrected_nothing_is_in_place(nuclei_crop):
    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation="oaims")
    s = engine.session(image)
    lid = largest_ids(labels, 1)[0]
    mask = s.click(object_centre(labels, lid)).mask
    inside = np.argwhere(mask & (labels == lid))

    def n_mi():
        return sum(e["kind"] == "update" and e["extra"]["method"] == "mi" for e in s.events)

    s.click(tuple(inside[len(inside) // 3]), positive=True)  # corrects nothing: suspect
    s.click(tuple(inside[2 * len(inside) // 3]), positive=False)  # a correction, but after a suspect
    assert n_mi() == 0
    s.undo()
    s.undo()  # the suspect click is gone: MI learns again
    s.click(tuple(inside[2 * len(inside) // 3]), positive=False)
    assert n_mi() == 1
    s.accept()
    # A new object starts trusted: its correcting click is learnt from.
    lid2 = largest_ids(labels, 2)[1]
    mask = s.click(object_centre(labels, lid2)).mask
    inside2 = np.argwhere(mask & (labels == lid2))
    s.click(tuple(inside2[len(inside2) // 2]), positive=False)
    assert n_mi() == 2
    # With mi_stop=0 only the suspect click itself is skipped.
    loose = Engine.pretrained(device="cpu", adaptation="oaims:mi_stop=0")
    s2 = loose.session(image)
    mask = s2.click(object_centre(labels, lid)).mask
    inside = np.argwhere(mask & (labels == lid))
    s2.click(tuple(inside[len(inside) // 3]), positive=True)
    s2.click(tuple(inside[2 * len(inside) // 3]), positive=False)
    assert sum(e["kind"] == "update" and e["extra"]["method"] == "mi" for e in s2.events) == 1


@pytest.mark.parametrize("rewind", [True, False])
def test_suspect_click_rewinds_the_objects_mi_steps(nuclei_crop, rewind):
    """A click that corrects nothing undoes the MI steps already taken on its object (default)."""
    image, labels = nuclei_crop
    # (pi_ignore=0: PI learns from all of the object, which the last line checks.)
    engine = Engine.pretrained(
        device="cpu", adaptation="oaims:pi_ignore=0" if rewind else "oaims:mi_rewind=0:pi_ignore=0"
    )
    s = engine.session(image)
    lid = largest_ids(labels, 1)[0]
    mask = s.click(object_centre(labels, lid)).mask
    before = engine.weights_hash
    inside = np.argwhere(mask & (labels == lid))
    mask = s.click(tuple(inside[len(inside) // 4]), positive=False).mask  # a correction: MI steps
    assert engine.weights_hash != before
    learnt = engine.weights_hash
    s.click(edge_pixel(mask), positive=True)  # corrects nothing
    assert engine.weights_hash == (before if rewind else learnt)
    rewinds = [e for e in s.events if e["kind"] == "update" and e["extra"]["method"] == "mi_rewind"]
    assert len(rewinds) == int(rewind)
    if rewind:
        assert rewinds[0]["extra"]["weights_before"] == learnt and rewinds[0]["extra"]["weights_after"] == before
    s.accept()  # PI still learns from the object
    assert engine.weights_hash not in (before, learnt)


def edge_pixel(mask: np.ndarray) -> tuple[int, int]:
    """A pixel of ``mask`` on its border (a click there vouches for a small part of the mask)."""
    from scipy import ndimage

    rim = np.argwhere(mask & ~ndimage.binary_erosion(mask))
    return tuple(int(v) for v in rim[len(rim) // 2])


def test_prompts_record_whether_they_corrected_the_mask(nuclei_crop):
    image, labels = nuclei_crop
    s = Engine.pretrained(device="cpu").session(image)
    lid = largest_ids(labels, 1)[0]
    mask = s.click(object_centre(labels, lid)).mask
    inside = np.argwhere(mask & (labels == lid))
    s.click(tuple(inside[len(inside) // 3]), positive=True)  # inside the mask already: corrects nothing
    s.click(tuple(inside[2 * len(inside) // 3]), positive=False)  # cuts the mask: a correction
    assert [p.corrected for p in s.planes[()].prompts] == [None, False, True]  # the first has no mask to correct


def doubtful_object(spec, nuclei_crop):
    """An engine after one object whose prompts hold a correction and then a positive click on the
    mask's border, which corrected nothing; returns (engine, session, base hash, the doubtful click)."""
    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation=spec)
    base = engine.weights_hash
    s = engine.session(image)
    lid = largest_ids(labels, 1)[0]
    mask = s.click(object_centre(labels, lid)).mask
    fix = correction_clicks(mask, labels == lid, 1, mode="center")[0]
    mask = s.click((fix.y, fix.x), positive=fix.positive).mask
    click = edge_pixel(mask)
    s.click(click, positive=True)
    s.accept()
    return engine, s, base, click


def test_pi_leaves_out_what_a_doubtful_click_vouches_for(nuclei_crop):
    from napari_oaims.adapt.oaims import OAIMSAdapter
    from napari_oaims.adapt.targets import leave_out
    from napari_oaims.core.prompts import Prompt

    image, labels = nuclei_crop
    # With clicks that all correct the mask, pi_ignore changes nothing.
    lid = largest_ids(labels, 1)[0]
    same = [annotated(spec, nuclei_crop, 3)[0].weights_hash for spec in ("pi", "pi:pi_ignore=0")]
    assert same[0] == same[1]
    # With a doubtful click, PI learns from less of the mask, so the weights differ. (A smaller
    # disc than the default's: this click on the border of a small nucleus vouches for half of it.)
    on, s, base, click = doubtful_object("pi:pi_ignore=0.3", nuclei_crop)
    off = doubtful_object("pi:pi_ignore=0", nuclei_crop)[0]
    assert on.weights_hash not in (base, off.weights_hash)
    assert [e["extra"]["method"] for e in s.events if e["kind"] == "update"] == ["pi_stage1", "pi_stage2"]
    # What is left out: mask pixels (the click's label) near the click; background pixels near it stay.
    adapter = OAIMSAdapter(mi=False, pi=True, pi_ignore=0.3)
    s2 = Engine.pretrained(device="cpu").session(image)
    final = labels == lid
    first = Prompt("click", True, np.array([object_centre(labels, lid)]))
    view = adapter._view(s2.view(()), first, final)
    doubt = Prompt("click", True, np.array([click]), corrected=False)
    assert leave_out([view], [doubt], final, adapter.config.pi_ignore) is None
    w, target = view.weight, view.target
    cy, cx = view.window.to_work(np.array(click))
    radius = adapter.config.pi_ignore * 2 * np.sqrt(final.sum() / np.pi) * view.window.scale
    yy, xx = np.mgrid[: w.shape[0], : w.shape[1]]
    near = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    assert (w[near & target] == 0).all() and (w[near & ~target] == 1).all() and (w[~near] == 1).all()
    assert 0 < (w[target] == 0).mean() < 0.5  # part of the mask, not all of it


def test_pi_skips_an_object_that_doubtful_clicks_vouch_for_entirely(nuclei_crop):
    """A disc of 3 diameters around the doubtful click holds the whole mask: nothing left to learn."""
    engine, s, base, _ = doubtful_object("pi:pi_ignore=3", nuclei_crop)
    updates = [e["extra"] for e in s.events if e["kind"] == "update"]
    assert [u["method"] for u in updates] == ["pi_skip"] and "corrected nothing" in updates[0]["reason"]
    assert engine.weights_hash == base and engine.updates == 0


@pytest.mark.parametrize("bad", ["-1", "nan", "inf"])
def test_pi_ignore_must_be_a_non_negative_number(bad):
    from napari_oaims.adapt import make_adapter

    with pytest.raises(ValueError, match="pi_ignore"):
        make_adapter(f"oaims:pi_ignore={bad}")


def test_replay_buffer_mixes_earlier_objects_into_stage2(nuclei_crop):
    """The replay buffer (seed 003): each accepted object's own stage-2 sample is kept (up to
    ``replay_size``); later stage-2 steps train on it too, so the weights part from a run without
    replay only from the second object on. ``engine.reset()`` empties it."""
    image, labels = nuclei_crop
    ids = largest_ids(labels, 3)
    engines = {
        spec: Engine.pretrained(device="cpu", adaptation=spec) for spec in ("pi:replay_size=0", "pi:replay_size=2")
    }
    hashes = {spec: [] for spec in engines}
    for spec, engine in engines.items():
        s = engine.session(image)
        for lid in ids:
            annotate(s, labels, lid, clicks=2)
            hashes[spec].append(engine.weights_hash)
    plain, replay = hashes["pi:replay_size=0"], hashes["pi:replay_size=2"]
    assert plain[0] == replay[0]  # nothing to replay at the first object
    assert plain[1] != replay[1] and plain[2] != replay[2]
    adapter = engines["pi:replay_size=2"].adapter
    assert len(adapter.buffer) == 2  # three objects, the last two kept
    engines["pi:replay_size=2"].reset()
    assert len(adapter.buffer) == 0
    assert Engine.pretrained(device="cpu", adaptation="oaims").adapter.settings()["replay_size"] == 16  # the default


def test_pi_learns_nothing_from_previews_accepted_untouched(nuclei_crop):
    """An accepted preview nobody corrected is the model's own answer: PI leaves it out (a logged
    ``pi_skip``, weights unchanged) and the guard keeps it as a question; with a correction, both
    PI stages run."""
    image, labels = nuclei_crop
    engine = Engine.pretrained(device="cpu", adaptation="pi")
    s = engine.session(image)
    for lid in largest_ids(labels, 3):
        s.click(object_centre(labels, lid))
        s.accept()
    updates = [e["extra"] for e in s.events if e["kind"] == "update"]
    assert [u["method"] for u in updates] == ["pi_skip"] * 3
    assert all(u["weights_before"] == u["weights_after"] == engine.base_hash for u in updates)
    assert engine.updates == 0 and len(engine.adapter.probes) == 3
    corrected, s2, _ = annotated("pi", nuclei_crop, 3)
    assert [e["extra"]["method"] for e in s2.events if e["kind"] == "update"][-2:] == ["pi_stage1", "pi_stage2"]
