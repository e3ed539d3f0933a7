"""Preprocessing behind the feature extractor: reading recordings (`fmri_inputs`), resampling to the model's TR
(`temporal_resampling`) and robust scaling with streamed statistics (`robust_scaling`)."""
