"""Each model family's towers as torch modules from tensors to (n, dim) features.

One module per tower is what every numeric path runs: torch directly (fp32,
bfloat16, fp16), or its ONNX export (search.onnx_export). Imported only when a
model loads: torch is heavy.
"""

import torch


def _features(result):
    # transformers 5 returns a model output from get_*_features; 4.x returned the tensor.
    return getattr(result, "pooler_output", result)


class ImageFeatures(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return _features(self.model.get_image_features(pixel_values=pixel_values))


class TextFeatures(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return _features(self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))


class SiglipTextFeatures(torch.nn.Module):
    """SigLIP's text tower reads no attention mask: it was trained on texts padded to full length."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids):
        return _features(self.model.get_text_features(input_ids=input_ids))


class MeanPooledTextFeatures(torch.nn.Module):
    """sentence-transformers' Transformer -> mean Pooling -> Dense, as one module."""

    def __init__(self, encoder, dense, tanh: bool):
        super().__init__()
        self.encoder, self.dense, self.tanh = encoder, dense, tanh

    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        projected = self.dense(pooled)
        return torch.tanh(projected) if self.tanh else projected
