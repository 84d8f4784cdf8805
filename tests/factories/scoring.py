"""Factories for the scoring app: container runs and scored results."""

from __future__ import annotations

import factory
import numpy as np
from django.conf import settings

from scoring.arrays import to_bytes
from scoring.models import Result, Run
from submissions.models import Submission
from tests.factories.challenges import EvaluationSetFactory
from tests.factories.submissions import SubmissionFactory, told_finish


class RunFactory(factory.django.DjangoModelFactory):
    """An unfinished run on hidden data of the submission's current attempt (the attempt
    whose runs its page shows)."""

    class Meta:
        model = Run

    submission = factory.SubFactory(SubmissionFactory)
    lane = Run.Lane.HIDDEN
    attempt = factory.SelfAttribute("submission.attempts")
    container_name = factory.LazyAttribute(
        lambda r: f"{settings.HELDOUT_CONTAINER_PREFIX}{r.submission.pk}-a{r.attempt}-{r.lane}")


def _evaluation_set(result):  # type: ignore[no-untyped-def]
    phase = result.submission.phase
    return phase.evaluation_set or EvaluationSetFactory(challenge=phase.challenge)


def _optional_bytes(array, dtype):  # type: ignore[no-untyped-def]
    return None if array is None else to_bytes(np.asarray(array).astype(dtype))


class ResultFactory(factory.django.DjangoModelFactory):
    """The result of a succeeded submission on its phase's evaluation set (a new set when the
    phase has none). Pass `scores=` (and `labels=`) as arrays; they are stored as .npy bytes.
    The default scores are 0.5 for each case of the set."""

    class Meta:
        model = Result

    class Params:
        scores = factory.LazyAttribute(lambda r: np.full(r.evaluation_set.n_cases, 0.5))
        labels = None

    submission = factory.SubFactory(
        SubmissionFactory, status=Submission.Status.SUCCEEDED,
        finished_at=factory.LazyFunction(told_finish))
    evaluation_set = factory.LazyAttribute(_evaluation_set)
    metrics = factory.LazyFunction(lambda: {"all": {"auroc": 0.8, "auprc": 0.6}})
    case_scores = factory.LazyAttribute(lambda r: _optional_bytes(r.scores, np.float64))
    case_labels = factory.LazyAttribute(lambda r: _optional_bytes(r.labels, np.int8))
