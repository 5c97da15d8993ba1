"""The import-string resolver: what resolves, and each kind of failure told apart."""

from __future__ import annotations

import importlib
import itertools
import pickle
import sys
from pathlib import Path

import pytest

from vibe_actors import (
    ImportAttributeMissing,
    ImportModuleFailed,
    ImportModuleNotFound,
    ImportStringError,
    MalformedImportString,
    VibeError,
    resolve_import,
)
from vibe_actors._imports import split_import_string

HERE = __name__
_packages = itertools.count(1)


class Outer:
    class Inner:
        pass


def a_function() -> str:
    return "called"


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh package on sys.path; ``make(module, source)`` writes one of its modules.

    Returns the package's name; its modules are dropped from sys.modules afterwards.
    """
    name = f"vibe_imports_fixture_{next(_packages)}"
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))

    def make(module: str, source: str) -> str:
        (root / f"{module}.py").write_text(source)
        importlib.invalidate_caches()  # the package's directory listing is cached
        return f"{name}.{module}"

    yield make
    for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[loaded]


def test_resolves_classes_nested_names_and_functions():
    assert resolve_import(f"{HERE}:Outer") is Outer
    assert resolve_import(f"{HERE}:Outer.Inner") is Outer.Inner
    assert resolve_import(f"{HERE}:a_function")() == "called"
    assert resolve_import("json:dumps") is sys.modules["json"].dumps


@pytest.mark.parametrize("path", ["", "no_colon", ":Name", "module:", ":"])
def test_a_malformed_string_is_malformed_and_imports_nothing(path):
    with pytest.raises(MalformedImportString) as raised:
        resolve_import(path)
    error = raised.value
    assert isinstance(error, ImportStringError) and isinstance(error, VibeError)
    assert isinstance(error, ValueError)  # what callers validating a config catch
    assert error.path == path and (error.module, error.attribute) == ("", "")
    assert str(error) == f"expected 'package.module:attribute', got {path!r}"
    assert split_import_string(path) is None


def test_split_gives_the_two_parts_without_importing():
    assert split_import_string("a.b:C.D") == ("a.b", "C.D")
    assert "vibe_never_imported_xyz" not in sys.modules
    assert split_import_string("vibe_never_imported_xyz:f") == ("vibe_never_imported_xyz", "f")
    assert "vibe_never_imported_xyz" not in sys.modules


def test_a_missing_module_is_not_found():
    with pytest.raises(ImportModuleNotFound) as raised:
        resolve_import("vibe_no_such_module_xyz:Thing")
    error = raised.value
    assert (error.module, error.attribute, error.missing) == (
        "vibe_no_such_module_xyz",
        "Thing",
        "vibe_no_such_module_xyz",
    )
    assert str(error) == "module 'vibe_no_such_module_xyz' not found"
    assert isinstance(error.__cause__, ModuleNotFoundError)


def test_a_missing_parent_package_is_named():
    with pytest.raises(ImportModuleNotFound) as raised:
        resolve_import("vibe_no_such_package_xyz.sub:Thing")
    assert raised.value.missing == "vibe_no_such_package_xyz"
    assert str(raised.value) == (
        "module 'vibe_no_such_package_xyz.sub' not found (no module 'vibe_no_such_package_xyz')"
    )


def test_a_missing_submodule_of_an_existing_package_is_not_found(package):
    existing = package("present", "")
    parent = existing.rpartition(".")[0]
    with pytest.raises(ImportModuleNotFound) as raised:
        resolve_import(f"{parent}.absent:Thing")
    assert raised.value.missing == raised.value.module == f"{parent}.absent"
    assert str(raised.value) == f"module '{parent}.absent' not found"


def test_a_module_that_raises_while_importing_failed_with_its_cause(package):
    broken = package("broken", "X = 1\nraise RuntimeError('boom at import')\n")
    with pytest.raises(ImportModuleFailed) as raised:
        resolve_import(f"{broken}:X")
    error = raised.value
    assert (error.module, error.attribute) == (broken, "X")
    assert error.reason == "RuntimeError: boom at import"
    assert str(error) == f"importing '{broken}' failed: RuntimeError: boom at import"
    assert isinstance(error.__cause__, RuntimeError)


def test_a_module_importing_a_missing_module_failed_it_is_not_missing_itself(package):
    needy = package("needy", "import vibe_missing_dependency_xyz\n")
    with pytest.raises(ImportModuleFailed) as raised:
        resolve_import(f"{needy}:Anything")
    cause = raised.value.__cause__
    assert isinstance(cause, ModuleNotFoundError) and cause.name == "vibe_missing_dependency_xyz"
    assert (
        raised.value.reason == "ModuleNotFoundError: No module named 'vibe_missing_dependency_xyz'"
    )


def test_a_module_raising_a_base_exception_is_not_wrapped(package):
    exiting = package("exiting", "raise SystemExit(3)\n")
    with pytest.raises(SystemExit):
        resolve_import(f"{exiting}:X")


@pytest.mark.parametrize("attribute", ["Nope", "Outer.Nope", "Outer.Inner.Nope", "Outer..Inner"])
def test_a_missing_attribute_names_the_whole_dotted_name(attribute):
    with pytest.raises(ImportAttributeMissing) as raised:
        resolve_import(f"{HERE}:{attribute}")
    error = raised.value
    assert (error.module, error.attribute) == (HERE, attribute)
    assert str(error) == f"module '{HERE}' has no attribute '{attribute}'"
    assert isinstance(error.__cause__, AttributeError)


@pytest.mark.parametrize(
    "error",
    [
        MalformedImportString("x"),
        ImportModuleNotFound("a.b:C", "a.b", "C", "a"),
        ImportModuleFailed("a:C", "a", "C", "RuntimeError: boom"),
        ImportAttributeMissing("a:C.D", "a", "C.D"),
    ],
)
def test_each_kind_pickles_with_its_fields(error):
    # A Ray host raises them in another process: they must cross intact.
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and str(copy) == str(error)
    assert vars(copy) == vars(error)
