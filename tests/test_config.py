from pathlib import Path

import pytest

from lisearch.config import ConfigError, default_jars_dir, load_settings, parse_override


def test_local_profile_defaults():
    s = load_settings("local")
    assert s.profile == "local"
    assert s.spark.master == "local[2]"
    assert dict(s.spark.conf)["spark.driver.host"] == "127.0.0.1"
    assert s.label.batch_size == 64


def test_overrides_are_typed_and_win():
    s = load_settings("local", ["label.batch_size=8", "label.force=true", "spark.conf.spark.foo=bar"])
    assert s.label.batch_size == 8 and s.label.force is True
    assert dict(s.spark.conf)["spark.foo"] == "bar"
    assert dict(s.spark.conf)["spark.driver.host"] == "127.0.0.1"  # profile conf kept


def test_relative_paths_resolve_against_home(tmp_path: Path):
    s = load_settings("local", [f"paths.home={tmp_path}", "paths.warehouse=wh"])
    assert s.paths.warehouse_dir == (tmp_path / "wh").resolve()
    assert s.paths.jars_dir == default_jars_dir() and not s.paths.jars_dir.is_relative_to(tmp_path)


def test_jars_belong_to_the_installation_not_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LISEARCH_HOME", str(tmp_path / "new-home"))
    assert load_settings("local").paths.jars_dir == load_settings("local", [f"paths.home={tmp_path}"]).paths.jars_dir
    monkeypatch.setenv("LISEARCH_JARS", str(tmp_path / "jars"))
    assert load_settings("local").paths.jars_dir == tmp_path / "jars"


def test_unknown_profile_lists_known():
    with pytest.raises(ConfigError, match=r"Unknown profile 'nope'.*local.*standalone"):
        load_settings("nope")


def test_unknown_key_is_an_error():
    with pytest.raises(ConfigError, match=r"Unknown setting label.batchsize.*batch_size"):
        load_settings("local", ["label.batchsize=3"])


def test_unknown_section_is_an_error(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[sparkk]\nmaster='local[1]'\n")
    with pytest.raises(ConfigError, match=r"Unknown section \[sparkk\]"):
        load_settings(str(bad))


def test_broken_toml_names_the_file(tmp_path: Path):
    bad = tmp_path / "broken.toml"
    bad.write_text("[spark\nmaster=\n")
    with pytest.raises(ConfigError, match=r"broken.toml is not valid TOML"):
        load_settings(str(bad))


def test_wrong_types_are_errors():
    with pytest.raises(ConfigError, match=r"label.batch_size must be an integer"):
        load_settings("local", ["label.batch_size=many"])
    with pytest.raises(ConfigError, match=r"label.batch_size is 0"):
        load_settings("local", ["label.batch_size=0"])
    with pytest.raises(ConfigError, match=r"spark.delta_source is 'maven'"):
        load_settings("local", ["spark.delta_source=maven"])
    with pytest.raises(ConfigError, match=r"measured.regressor_aggregate is 'middle'; use \"mean\" or \"median\""):
        load_settings("local", ["measured.regressor_aggregate=middle"])
    assert load_settings("local", ["measured.regressor_aggregate=median"]).measured.regressor_aggregate == "median"
    with pytest.raises(ConfigError, match=r"measured.p_fast is 'trees'; use one of balanced, votes"):
        load_settings("local", ["measured.p_fast=trees"])
    assert load_settings("local").measured.p_fast == "balanced"


def test_override_syntax():
    assert parse_override("a.b=c=d") == {"a": {"b": "c=d"}}
    with pytest.raises(ConfigError, match=r"section\.key=value"):
        parse_override("novalue")


@pytest.mark.parametrize("profile", ["base", "local", "standalone", "cluster", "paper"])
def test_shipped_profiles_load(profile: str):
    s = load_settings(profile)
    assert s.to_dict()["profile"] == profile


def test_cluster_profile_leaves_master_to_spark_submit():
    assert not load_settings("cluster").spark.master


def test_limits_are_finite_and_zero_means_none():
    import math

    from lisearch.config import limit_text

    free = load_settings("local", ["screen.max_cost_per_kg=0", "screen.max_mean_atomic_mass=25"]).screen
    assert free.cost_limit == math.inf and free.mass_limit == 25.0
    assert limit_text(free.cost_limit) == "0" and limit_text(free.mass_limit) == "25"
    for bad in ("nan", "inf", "-inf", "1e400"):
        with pytest.raises(ConfigError, match="finite number"):
            load_settings("local", [f"screen.max_cost_per_kg={bad}"])
    with pytest.raises(ConfigError, match="or 0 for none"):
        load_settings("local", ["screen.max_mean_atomic_mass=-3"])
