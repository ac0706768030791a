"""Test-only backends with a planted option flaw: refact's core (the reference backend,
float64), correct everywhere but in one option of cross_entropy.

``ZeroMassNanBackend`` computes a probability target's loss as the textbook
-sum_j q_j log_softmax(x)_j, so a -inf logit with q_j = 0 gives 0 * -inf = NaN where
the true loss is finite. ``SmoothingOverOthersBackend`` smooths a class-index target as
(1 - eps) q + eps / (C - 1), the off-by-one of label smoothing. ``NoOptionsBackend``
declares no option at all: every call with one is skipped, naming the option.
"""

import math

import refact
from refact.backends import Binding
from refact.backends.reference import ReferenceBackend


def _reduce(losses, reduction):
    if reduction == "none":
        return losses
    return math.fsum(losses) / (len(losses) if reduction == "mean" else 1)


class ZeroMassNanBackend(ReferenceBackend):
    name = "zero_mass_nan"

    def load(self):
        bindings = super().load()
        correct = bindings["cross_entropy"]

        def cross_entropy(logits, target, reduction="none", **options):
            if not isinstance(target[0], list):
                return correct.call(logits, target, reduction=reduction, **options)
            losses = []
            for row, q in zip(logits, target):
                log_q = refact.log_softmax(row)
                losses.append(-sum(qj * lj for qj, lj in zip(q, log_q)))  # 0 * -inf = nan
            return _reduce(losses, reduction)

        bindings["cross_entropy"] = Binding(cross_entropy, "test.cross_entropy", gradient=False,
                                            options=correct.options)
        return bindings


class SmoothingOverOthersBackend(ReferenceBackend):
    name = "smoothing_over_others"

    def load(self):
        bindings = super().load()
        correct = bindings["cross_entropy"]

        def cross_entropy(logits, target, label_smoothing=0.0, reduction="none", **options):
            if not label_smoothing or isinstance(target[0], list):
                return correct.call(logits, target, label_smoothing=label_smoothing,
                                    reduction=reduction, **options)
            classes = len(logits[0])
            smoothed = [[(1 - label_smoothing) * (c == k) + label_smoothing / (classes - 1)
                         for c in range(classes)] for k in target]
            return correct.call(logits, smoothed, reduction=reduction, **options)

        bindings["cross_entropy"] = Binding(cross_entropy, "test.cross_entropy", gradient=False,
                                            options=correct.options)
        return bindings


class NoOptionsBackend(ReferenceBackend):
    name = "no_options"

    def load(self):
        return {name: Binding(b.call, *b.sources, gradient=False)
                for name, b in super().load().items()}
