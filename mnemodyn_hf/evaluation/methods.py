"""The read-outs the harness can score, by name, and the groups of them that share work or rules."""

from __future__ import annotations

BACKBONE_METHODS = ("mnemodyn_linear_probe", "mnemodyn_head", "mnemodyn_finetune")
#: Read-outs of the frozen backbone beyond mean|std pooling: the connectivity of its output (Pearson, tangent), the
#: tangent connectivity of its update alone (output - input: what the residual layers add, without the identity
#: path that makes the output's connectivity the input's), the mean|std of its last layer's latent channels
#: (`embeddings.backbone_states`), and the random backbone read the same second-order ways (the control of what
#: pretraining adds).
STATE_METHODS = (
    "mnemodyn_correlation_probe",
    "mnemodyn_correlation_head",
    "mnemodyn_tangent_probe",
    "mnemodyn_update_tangent",
    "mnemodyn_latent_probe",
    "random_backbone_correlation",
    "random_backbone_tangent",
    "random_backbone_update_tangent",
)
BASELINE_METHODS = ("fc_pearson", "fc_tangent", "pooled_input", "random_backbone")
DEFAULT_METHODS = BACKBONE_METHODS + STATE_METHODS + BASELINE_METHODS
#: Tangent-space read-outs of backbone outputs and the feature holding their series (`fc_tangent` reads the input).
TANGENT_SERIES = {
    "mnemodyn_tangent_probe": "hidden_series",
    "mnemodyn_update_tangent": "update_series",
    "random_backbone_tangent": "random_hidden_series",
    "random_backbone_update_tangent": "random_update_series",
}
#: Methods that need the random backbone's states.
RANDOM_STATE_METHODS = {method for method in DEFAULT_METHODS if method.startswith("random_backbone")}
#: Frozen-head read-outs: method -> (the head's pooling, the feature holding that pooling of the backbone's output).
HEAD_FEATURES = {
    "mnemodyn_head": ("mean_std", "embedding"),
    "mnemodyn_correlation_head": ("correlation", "mnemodyn_correlation_probe"),
}
#: Methods that need the pretrained backbone's states (fine-tuning loads the backbone itself).
PRETRAINED_STATE_METHODS = {m for m in BACKBONE_METHODS + STATE_METHODS if m.startswith("mnemodyn_")} - {
    "mnemodyn_finetune"
}
#: Splits that hold sites out: the site is the unit of inference and of inner model selection.
SITE_SPLITS = ("leave-site-out", "external-sites")
#: Read-outs trained with an inner validation split (`heads.inner_split`) rather than an inner CV.
TRAINER_METHODS = ("mnemodyn_head", "mnemodyn_correlation_head", "mnemodyn_finetune")
#: Read-outs fitted by `linear_models.fit_predict` (the ones a label-permutation null can re-run cheaply).
LINEAR_METHODS = tuple(method for method in DEFAULT_METHODS if method not in TRAINER_METHODS)


__all__ = [
    "BACKBONE_METHODS",
    "BASELINE_METHODS",
    "DEFAULT_METHODS",
    "LINEAR_METHODS",
    "HEAD_FEATURES",
    "PRETRAINED_STATE_METHODS",
    "RANDOM_STATE_METHODS",
    "SITE_SPLITS",
    "STATE_METHODS",
    "TANGENT_SERIES",
    "TRAINER_METHODS",
]
