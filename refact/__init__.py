"""refact: reference sigmoid, softmax and their losses, in pure Python.

The core imports the standard library only, so it can be vendored by copying this
folder. Every function accepts a float or int; the elementwise ones also accept any
rectangular nesting of sequences (lists, tuples, arrays with ``tolist``) and return
the same nesting as lists. Sets, mappings, bytes and iterators are refused (``_inputs``).
"""

from .elementwise import (
    sigmoid, expit, logistic, sigmoid_grad, log_sigmoid, softplus, logit, hard_sigmoid,
)
from .normal import ndtr, probit, ndtri
from .softmax import softmax, log_softmax, logsumexp, softmax_jacobian, softmax_vjp, probabilities
from .losses import (
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, distillation_loss,
)

__version__ = "0.1.0"

#: The canonical names of the functions the core implements (the conformance catalog
#: declares each of them; the backends bind them by these names).
FUNCTIONS = (
    "sigmoid", "sigmoid_grad", "log_sigmoid", "softplus", "logit", "hard_sigmoid",
    "ndtr", "probit", "softmax", "log_softmax", "logsumexp", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "cross_entropy", "distillation_loss",
)

__all__ = [
    "FUNCTIONS", "sigmoid", "expit", "logistic", "sigmoid_grad", "log_sigmoid", "softplus", "logit",
    "hard_sigmoid", "ndtr", "probit", "ndtri", "softmax", "log_softmax", "logsumexp",
    "softmax_jacobian", "softmax_vjp", "probabilities", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "cross_entropy", "distillation_loss",
]
