"""Loading the trained composition models (eML, esML, atom2vec-esML) from the artifacts folder, validated."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lisearch.models.artifact import load_artifact
from lisearch.models.atom2vec import KIND as ATOM2VEC_KIND
from lisearch.models.atom2vec import Atom2VecModel
from lisearch.models.linear import KIND as LINEAR_KIND
from lisearch.models.linear import ElementalLinearModel

MODEL_FILES = {"esml": "esml.json", "eml": "eml.json"}
ATOM2VEC_FILE = "atom2vec.json"


def load_models(artifacts_dir: Path, names: Sequence[str] = tuple(MODEL_FILES)) -> dict[str, ElementalLinearModel]:
    """Trained models by name; raises :class:`InputError` when one is missing or invalid."""
    models = {}
    for name in names:
        path = artifacts_dir / MODEL_FILES[name]
        artifact = load_artifact(path, kinds=(LINEAR_KIND,))
        models[name] = ElementalLinearModel.from_payload(artifact["payload"], str(path))
    return models


def load_atom2vec(artifacts_dir: Path) -> Atom2VecModel | None:
    """The trained atom2vec-esML model, or None when it was not trained yet (invalid files still raise)."""
    path = artifacts_dir / ATOM2VEC_FILE
    if not path.exists():
        return None
    model = load_model(path, kinds=(ATOM2VEC_KIND,))
    assert isinstance(model, Atom2VecModel)
    return model


def load_model(
    path: Path, kinds: tuple[str, ...] = (LINEAR_KIND, ATOM2VEC_KIND)
) -> ElementalLinearModel | Atom2VecModel:
    """A composition model artifact of one of ``kinds`` (linear or atom2vec), validated."""
    artifact = load_artifact(path, kinds=kinds)
    if artifact["kind"] == ATOM2VEC_KIND:
        return Atom2VecModel.from_payload(artifact["payload"], str(path))
    return ElementalLinearModel.from_payload(artifact["payload"], str(path))


__all__ = ["ATOM2VEC_FILE", "MODEL_FILES", "load_atom2vec", "load_model", "load_models"]
