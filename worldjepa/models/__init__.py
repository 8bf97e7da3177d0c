"""Models: the video encoder, the pre-training mask predictor, and (later) world-model predictors."""

from worldjepa.models.encoder import EncoderConfig, VideoEncoder

__all__ = ["EncoderConfig", "VideoEncoder"]
