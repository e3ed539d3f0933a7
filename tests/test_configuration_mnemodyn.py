import pytest
from transformers import AutoConfig

from mnemodyn_hf import MnemoDynConfig


def test_defaults_are_the_released_model():
    config = MnemoDynConfig()
    assert (config.num_rois, config.num_layers, config.latent_channels, config.context_length) == (450, 4, 300, 490)
    assert config.band_lengths == [490, 245, 123, 62, 31, 16]
    assert config.effective_window_overlap == 122 and config.pooled_size == 900
    assert config.hidden_size == 450 and config.num_hidden_layers == 4


def test_round_trip_through_auto_config(tmp_path):
    config = MnemoDynConfig(num_rois=3, roi_names=["a", "b", "c"], repetition_time=2.0, window_overlap=10)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, MnemoDynConfig)
    assert loaded.to_diff_dict() == config.to_diff_dict()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_rois": 0}, "num_rois must be a positive integer"),
        ({"wavelet": "morl"}, "wavelet='morl' is not supported"),
        ({"wavelet": "dmey"}, "is not supported"),
        ({"activation": "swish2"}, "activation='swish2' is not supported"),
        ({"context_length": 16, "wavelet_levels": 5}, "at least 2\\*\\*wavelet_levels"),
        ({"context_length": 64, "wavelet_levels": 5, "num_regions": 4}, "exceeds the coarsest band length 2"),
        ({"window_overlap": 490}, "window_overlap=490"),
        ({"repetition_time": 0.0}, "repetition_time must be > 0"),
        ({"num_rois": 3, "roi_names": ["a"]}, "roi_names has 1 names but num_rois=3"),
        ({"num_coarse_layers": -1}, "num_coarse_layers must be >= 0"),
        ({"pretraining_objective": "mae"}, "pretraining_objective='mae' is not one of"),
        ({"mask_ratio": 0.0}, "mask_ratio must be in \\(0, 1\\)"),
        ({"mask_span_frames": 0}, "mask_span_frames must be a positive integer"),
        ({"noise_std": 0.0}, "noise_std must be > 0"),
        ({"ema_decay": 1.0}, "ema_decay must be in \\[0, 1\\)"),
    ],
)
def test_bad_values_raise_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        MnemoDynConfig(**overrides)
