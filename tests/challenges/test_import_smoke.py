from __future__ import annotations

import pytest

from challenges.bundles import import_challenge
from challenges.models import Challenge
from tests.bundles import write_bundle


@pytest.mark.django_db
def test_it_imports_a_bundle_and_reimport_changes_nothing(tmp_path):
    bundle = write_bundle(tmp_path / "bundle")
    challenge, changed = import_challenge(bundle)
    assert changed
    assert challenge.phases.get().evaluation_set.n_cases == 40
    again, changed_again = import_challenge(bundle)
    assert again.pk == challenge.pk and not changed_again
    assert Challenge.objects.count() == 1
