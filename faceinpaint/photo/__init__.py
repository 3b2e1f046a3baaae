"""Inpainting a user's own photo: face alignment, the model's frame, paste-back."""
