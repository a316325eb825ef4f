"""Named families: registration, resolution through load_family, and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.errors import FamilyError
from probes.models import registry
from probes.models.family import load_family
from probes.models.registry import family_names, is_family_name, named_family, register_family


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test registers into a copy; the process-wide table is restored afterwards."""
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))


def test_the_organism_is_registered_by_name_only() -> None:
    # a "module:function" string: probes.models never imports probes.organism to know the name
    assert registry._FAMILIES["organism"] == "probes.organism.train:organism_family"
    assert "organism" in family_names() and is_family_name("organism")
    assert not is_family_name("organsim") and not is_family_name(Path("organism"))


def test_a_registered_callable_resolves_through_load_family(clean_registry: None, tiny_dir) -> None:
    folder = str(tiny_dir("llama"))
    calls: list[int] = []

    def factory() -> dict[str, str]:
        calls.append(1)
        return {"base": folder}

    register_family("toy", factory)
    assert named_family("toy") == {"base": folder}
    fam = load_family("toy", check=False, name="toy")
    assert fam.name == "toy" and fam.variants == ["base"] and fam.specs["base"].source == folder
    assert len(calls) == 2  # the factory runs each time the name is asked for


def test_a_module_function_string_is_imported_on_first_use(clean_registry: None) -> None:
    register_family("pathy", "pathlib:Path")  # Path() -> Path('.'): any importable callable works
    assert named_family("pathy") == Path(".")
    register_family("broken", "probes.no_such_module:f")
    with pytest.raises(FamilyError, match="Cannot import the family factory 'probes.no_such_module:f'"):
        named_family("broken")


def test_registration_errors_name_the_value_and_the_fix(clean_registry: None) -> None:
    with pytest.raises(FamilyError, match="not of the form 'module:function'"):
        register_family("x", "no_colon")
    with pytest.raises(FamilyError, match="must be a callable .* got int"):
        register_family("x", 3)  # type: ignore[arg-type]
    with pytest.raises(FamilyError, match="non-empty string"):
        register_family(" ", dict)
    register_family("mine", dict)
    register_family("mine", dict)  # the same factory again is fine
    with pytest.raises(FamilyError, match="already registered .* replace=True"):
        register_family("mine", list)
    register_family("mine", list, replace=True)
    assert named_family("mine") == []


def test_an_unknown_name_suggests_the_close_one() -> None:
    with pytest.raises(
        FamilyError, match=r"No family is registered under the name 'organsim'.*Did you mean \['organism'\]"
    ):
        named_family("organsim")


def test_a_path_that_is_no_family_lists_the_names(tmp_path: Path) -> None:
    with pytest.raises(FamilyError, match=r"No family file at .*registered family name \['organism'\]"):
        load_family(tmp_path / "nothing-here")
