import sys

import pytest

from sbirbench.plugins.registry import Registry, RegistryError


def test_lazy_target_is_imported_only_on_load(tmp_path, monkeypatch):
    (tmp_path / "lazy_target_mod.py").write_text("class Thing:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry[type] = Registry("method")
    registry.add("thing", "lazy_target_mod:Thing", origin="test", description="a thing")
    assert "thing" in registry and registry.names() == ["thing"]
    assert [e.description for e in registry] == ["a thing"]
    assert "lazy_target_mod" not in sys.modules
    assert registry.load("thing").__name__ == "Thing"
    assert "lazy_target_mod" in sys.modules
    monkeypatch.delitem(sys.modules, "lazy_target_mod")


def test_aliases_resolve_to_the_same_entry():
    registry: Registry[object] = Registry("backbone")
    registry.add("vit_tokens", object, origin="a", aliases=("vit_small_fd",))
    assert registry.get("vit_small_fd") is registry.get("vit_tokens")
    assert registry.names() == ["vit_tokens"]


@pytest.mark.parametrize("second", ["pskd", "alias"])
def test_collision_names_both_origins(second):
    registry: Registry[object] = Registry("method")
    registry.add("pskd", "pkg_a.mod:PSKD", origin="plugin-a", aliases=("alias",))
    with pytest.raises(RegistryError) as info:
        registry.add(second, "pkg_b.mod:Other", origin="plugin-b")
    message = str(info.value)
    assert "registered twice" in message
    assert "plugin-a" in message and "pkg_a.mod:PSKD" in message
    assert "plugin-b" in message and "pkg_b.mod:Other" in message


def test_unknown_name_suggests_close_matches():
    registry: Registry[object] = Registry("method")
    for name in ("pskd", "triplet", "pretrained"):
        registry.add(name, object, origin="x")
    with pytest.raises(RegistryError, match=r"unknown method 'psdk'; did you mean 'pskd'\?"):
        registry.get("psdk")
    with pytest.raises(RegistryError, match="available: pretrained, pskd, triplet"):
        registry.get("zzzzzz")


def test_bad_target_paths_are_reported():
    registry: Registry[object] = Registry("method")
    registry.add("a", "no_colon_here", origin="p")
    registry.add("b", "json:not_there", origin="p")
    with pytest.raises(RegistryError, match="not of the form"):
        registry.load("a")
    with pytest.raises(RegistryError, match="'json' has no 'not_there'"):
        registry.load("b")
