"""faceinpaint: face inpainting with PyTorch Lightning."""

__version__ = "0.1.0"
